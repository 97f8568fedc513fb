//! Helpers shared by the integration tests (each file under `tests/` is a crate of its own).

/// `default` cases for a property test, or `PROPTEST_CASES` when it is set: a count given in
/// a `ProptestConfig` overrides the variable, so the tests read it here.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
