//! Broadcast payload encoding with the size budget (in progress).
