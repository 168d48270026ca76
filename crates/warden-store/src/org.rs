//! Rows and queries of the organisation binding. (Being built.)

use crate::Tx;

impl Tx<'_> {}
