//! Writes the CustomResourceDefinitions of the Tributary operator to `crds/` (or to the directory given as the
//! only argument). The files are generated — never edit them by hand.

use anyhow::Context;
use tributary_operator::crd;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(crd::crds_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    for generated in crd::generated_crds() {
        let path = dir.join(generated.file_name);
        let text = crd::render(&generated.crd)?;
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
