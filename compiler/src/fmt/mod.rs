//! `nudge fmt`: the canonical layout.
