//! Integration tests of the `portcullis` command line (one test binary).

mod verify;
