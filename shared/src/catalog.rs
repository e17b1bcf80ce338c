//! The catalog: every module, and so every Lambda function with its trigger and handler. Each
//! module declares its functions next to their handlers and lists them in its `MODULE`; this is
//! their concatenation. The function binaries name one function each; the local stack,
//! the generated template (`shared::platform::template`) and the API document read the whole list.

use std::sync::OnceLock;

use crate::platform::function::{Function, Module};
use crate::platform::queue::QueueDef;

/// Every module, in catalog order.
pub static MODULES: &[&Module] = &[
    &crate::health::MODULE,
    &crate::api_doc::MODULE,
    &crate::identity::MODULE,
    &crate::appliances::MODULE,
    &crate::notifications::MODULE,
    &crate::bank::MODULE,
    &crate::locks::MODULE,
    &crate::security::MODULE,
];

/// Every function, in catalog order (module by module).
pub fn functions() -> &'static [Function] {
    static ALL: OnceLock<Vec<Function>> = OnceLock::new();
    ALL.get_or_init(|| MODULES.iter().flat_map(|m| m.functions.iter().copied()).collect())
}

/// Every queue the modules consume or produce to.
pub fn queues() -> &'static [QueueDef] {
    static ALL: OnceLock<Vec<QueueDef>> = OnceLock::new();
    ALL.get_or_init(|| MODULES.iter().flat_map(|m| m.queues.iter().copied()).collect())
}

/// The function with this name.
pub fn get(name: &str) -> Option<&'static Function> {
    functions().iter().find(|f| f.name == name)
}

/// The module that declares the function with this name.
pub fn module_of(name: &str) -> Option<&'static Module> {
    MODULES.iter().copied().find(|m| m.functions.iter().any(|f| f.name == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_binary_friendly() {
        let mut seen = std::collections::HashSet::new();
        for f in functions() {
            assert!(seen.insert(f.name), "duplicate function {}", f.name);
            assert!(
                f.name
                    .split('-')
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
                "{} is not lowercase words joined by -",
                f.name
            );
        }
    }

    #[test]
    fn every_function_has_a_binary_that_runs_its_own_const() {
        let bins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
        for module in MODULES {
            for f in module.functions {
                let path = bins.join(format!("{}.rs", f.name));
                let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let constant = f.name.to_ascii_uppercase().replace('-', "_");
                let (prefix, entry) = ("run(&shared::", format!("::{constant}).await"));
                let own = src.lines().any(|l| l.trim().contains(prefix) && l.trim().ends_with(&entry));
                assert!(own, "{} does not run its own const ({constant})", path.display());
                let module_path = format!("run(&shared::{}", module.name.replace("docs", "api_doc"));
                assert!(
                    src.contains(&module_path),
                    "{} runs a const outside its module {}",
                    path.display(),
                    module.name
                );
            }
        }
        for entry in std::fs::read_dir(&bins).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let name = name.trim_end_matches(".rs");
            assert!(get(name).is_some(), "functions/src/bin/{name}.rs has no catalog entry");
        }
    }
}
