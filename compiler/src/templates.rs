//! Templates (MiniJinja) checked at compile time.
