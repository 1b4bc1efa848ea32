//! Vulnerability findings (issue 18): the advisory database (`db`, with the hand-made archives of
//! `craft`).

mod craft;
mod db;
