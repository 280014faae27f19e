//! The one error type of the contracts: every variant names the field and the value or index at fault.

use chrono::{DateTime, Utc};

/// A contract was violated: the value could not be constructed or deserialised.
///
/// These are always the caller's mistakes (bad input), never internal bugs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// An identifier was the empty string.
    #[error("{field} is empty; identifiers must be non-empty")]
    EmptyId {
        /// The identifier's field name, e.g. `tenant_id`.
        field: &'static str,
    },
    /// An identifier held a control character.
    #[error("{field} {value:?} has a control character at position {position}; identifiers must be printable")]
    NonPrintableId {
        /// The identifier's field name.
        field: &'static str,
        /// The offending identifier.
        value: String,
        /// Character position of the first control character.
        position: usize,
    },
    /// `timestamps` and `values` differ in length.
    #[error("timestamps has {timestamps} entries but values has {values}; they must be equal")]
    LengthMismatch {
        /// Number of timestamps.
        timestamps: usize,
        /// Number of values.
        values: usize,
    },
    /// A value was NaN or infinite.
    #[error("values[{index}] is {value}, not finite")]
    NonFiniteValue {
        /// Index of the value.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// Two consecutive timestamps were equal.
    #[error("timestamps[{index}] is {timestamp}, a duplicate of timestamps[{}]; timestamps must be strictly ascending", index - 1)]
    DuplicateTimestamp {
        /// Index of the second of the two equal timestamps.
        index: usize,
        /// The repeated timestamp.
        timestamp: DateTime<Utc>,
    },
    /// A timestamp was earlier than the one before it.
    #[error("timestamps[{index}] is {current}, before timestamps[{}] = {previous}; timestamps must be strictly ascending", index - 1)]
    UnsortedTimestamps {
        /// Index of the out-of-order timestamp.
        index: usize,
        /// The timestamp before it.
        previous: DateTime<Utc>,
        /// The out-of-order timestamp.
        current: DateTime<Utc>,
    },
    /// A score was outside [0, 1] or NaN.
    #[error("{field} is {value}, not in [0, 1]")]
    ScoreOutOfRange {
        /// The score's field name.
        field: &'static str,
        /// The offending score.
        value: f64,
    },
    /// `window_start` was after `window_end`.
    #[error("window_start {window_start} is after window_end {window_end}")]
    WindowReversed {
        /// Start of the window.
        window_start: DateTime<Utc>,
        /// End of the window.
        window_end: DateTime<Utc>,
    },
    /// A node-level aggregate did not name its cluster.
    #[error("node_id {node_id:?} is set but cluster_id is not; a node-level score must name its cluster")]
    NodeWithoutCluster {
        /// The node named.
        node_id: String,
    },
    /// An evidence field held a non-finite number.
    #[error("evidence.{field} is {value}, not finite")]
    NonFiniteEvidence {
        /// The evidence field.
        field: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The evidence in decades was negative or not finite.
    #[error("decades is {value}; the evidence in decades must be finite and at least 0")]
    BadDecades {
        /// The value given.
        value: f64,
    },
    /// An incident was given no member.
    #[error("an incident needs at least one member; members is empty")]
    EmptyIncident,
    /// An incident member ends before it starts.
    #[error("incident member {key} starts at {start}, after its end {end}")]
    IncidentMemberReversed {
        /// The member's series.
        key: String,
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// An incident's summary sentence is empty.
    #[error("incident summary is empty; an incident must say what happened")]
    EmptySummary,
    /// An incident's members belong to different tenants.
    #[error("incident members belong to tenants {first:?} and {other:?}; an incident stays inside one tenant")]
    IncidentTenants {
        /// The first member's tenant.
        first: String,
        /// Another member's tenant.
        other: String,
    },
    /// An incident claims fewer nodes in its scope than its members touch.
    #[error("nodes_in_scope is {nodes_in_scope} but the members touch {nodes_affected} nodes")]
    IncidentNodes {
        /// Nodes the scope is said to hold.
        nodes_in_scope: usize,
        /// Distinct nodes among the members.
        nodes_affected: usize,
    },
    /// An incident's scope is not the smallest group holding its members.
    #[error("incident scope is {claimed} but its members make it {found}")]
    IncidentScope {
        /// The scope given, with its path.
        claimed: String,
        /// The scope the members give, with its path.
        found: String,
    },
    /// An incident's start or end is not its members' earliest start or latest end.
    #[error("incident {field} is {claimed} but its members give {found}")]
    IncidentBounds {
        /// `start` or `end`.
        field: &'static str,
        /// The value given.
        claimed: DateTime<Utc>,
        /// The value the members give.
        found: DateTime<Utc>,
    },
    /// An incident's score or node count is not what its members give.
    #[error("incident score {score} and nodes_affected {nodes_affected} do not match its members ({found_score}, {found_nodes})")]
    IncidentTotals {
        /// The score given.
        score: f64,
        /// The node count given.
        nodes_affected: usize,
        /// The members' highest score.
        found_score: f64,
        /// The members' distinct nodes.
        found_nodes: usize,
    },
    /// A benchmark file or node is not what scoring needs (lengths, finite values, labels inside
    /// its rows).
    #[error("{item}: {message}")]
    Benchmark {
        /// The file or node, by name.
        item: String,
        /// What is wrong.
        message: String,
    },
}
