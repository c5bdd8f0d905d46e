//! switchboard-sim: arrives with the Node issue.
