//! Exit codes: the CLI's contract with CI systems, in one place.

/// Every threshold held.
pub const PASS: i32 = 0;
/// At least one threshold failed (or an expected failure did not happen).
pub const FAIL: i32 = 1;
/// The scenario file is invalid, or the command line is.
pub const INVALID_INPUT: i32 = 2;
/// The environment could not run the scenario: no engine, no image, SFU not ready.
pub const ENVIRONMENT: i32 = 3;
/// The run cannot be judged: the harness fell behind, or the run was interrupted.
pub const RUN_INVALID: i32 = 4;
