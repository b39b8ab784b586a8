//! The vector-Jacobian rule of every IR primitive.
