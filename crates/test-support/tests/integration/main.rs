//! Integration tests: the fake servers over real loopback HTTP.

mod model;
