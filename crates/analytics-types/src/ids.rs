//! Identifier newtypes: a node id can never be passed where a tenant id is expected.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ContractError;

/// Checks an identifier: non-empty, and printable (no control characters).
fn check_id(field: &'static str, value: &str) -> Result<(), ContractError> {
    if value.is_empty() {
        return Err(ContractError::EmptyId { field });
    }
    if let Some(position) = value.chars().position(char::is_control) {
        return Err(ContractError::NonPrintableId { field, value: value.to_owned(), position });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        ///
        /// The text is shared: a clone (every result of a series carries its identifiers) is a
        /// reference count, not a copy.
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, ContractError> {
                let value = value.into();
                check_id($field, &value)?;
                Ok(Self(value.into()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ContractError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ContractError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A tenant (customer) identifier, as in `tenant_id`.
    TenantId,
    "tenant_id"
);
id_type!(
    /// A cluster identifier, as in `cluster_id`.
    ClusterId,
    "cluster_id"
);
id_type!(
    /// A node (machine) identifier, as in `node_id`.
    NodeId,
    "node_id"
);
id_type!(
    /// A metric name such as `cpu_usage`, as in `metric_name`.
    MetricName,
    "metric_name"
);

/// The full identity of one series: tenant, cluster, node and metric.
///
/// Ordering is lexicographic in that order, which is the order the fleet pipeline and the
/// roll-ups use everywhere (so output never depends on hash order or thread timing).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// Tenant owning the series.
    pub tenant_id: TenantId,
    /// Cluster the node belongs to.
    pub cluster_id: ClusterId,
    /// Node emitting the metric.
    pub node_id: NodeId,
    /// Metric name.
    pub metric_name: MetricName,
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.tenant_id, self.cluster_id, self.node_id, self.metric_name)
    }
}
