//! Standard Kubernetes Conditions, edited the same way by every reconciler: a condition keeps its
//! `lastTransitionTime` until its status changes, so a status that did not change is byte-identical.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Sets conditions for one generation at one instant.
#[derive(Debug)]
pub struct Conditions<'a> {
    /// The conditions being edited (a status' `conditions`).
    pub list: &'a mut Vec<Condition>,
    /// The `metadata.generation` they describe.
    pub generation: Option<i64>,
    /// When a changed condition transitioned.
    pub now: &'a Time,
}

impl Conditions<'_> {
    /// Sets a True/False condition.
    pub fn set(&mut self, type_: &str, value: bool, reason: &str, message: &str) {
        self.set_status(type_, if value { "True" } else { "False" }, reason, message);
    }

    /// Sets one condition, keeping its `lastTransitionTime` unless its status changes.
    pub fn set_status(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let condition = Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: self.generation,
            last_transition_time: self.now.clone(),
        };
        match self.list.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) if existing.status == status => {
                let since = existing.last_transition_time.clone();
                *existing = Condition {
                    last_transition_time: since,
                    ..condition
                };
            }
            Some(existing) => *existing = condition,
            None => self.list.push(condition),
        }
    }

    /// Whether a condition of this type is present.
    pub fn has(&self, type_: &str) -> bool {
        self.list.iter().any(|c| c.type_ == type_)
    }

    /// Removes the condition of this type, if any.
    pub fn remove(&mut self, type_: &str) {
        self.list.retain(|c| c.type_ != type_);
    }

    /// The condition of this type, if present.
    pub fn get(&self, type_: &str) -> Option<&Condition> {
        self.list.iter().find(|c| c.type_ == type_)
    }
}
