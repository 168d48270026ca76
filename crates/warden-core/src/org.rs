//! Organisation model: units and people, compiled to accounts and users. (Being built.)
