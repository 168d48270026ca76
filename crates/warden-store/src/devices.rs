//! Rows and queries of device fleets. (Being built.)

use crate::Tx;

impl Tx<'_> {}
