//! Partition logs on disk. (Being written on the `log` branch.)
