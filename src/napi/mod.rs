//! The Node binding (placeholder until the binding layer is written).
