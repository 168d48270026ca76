//! Device fleets: a hub account and one account per device. (Being built.)
