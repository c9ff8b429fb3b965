//! `tributary-operator`: the controller binary (the reconcile loop lands in a later change).

fn main() {
    println!("tributary-operator: controller not wired up yet; see `crdgen` for the CRDs");
}
