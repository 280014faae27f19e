#![doc = include_str!("../README.md")]

pub mod seasonality;
pub mod stats;
