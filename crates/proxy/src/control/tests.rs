//! Unit tests of the control interface: a hand-made control (real store,
//! recorder and keys in a temporary folder), no sockets.
