//! mpcluster-agent (in progress)
