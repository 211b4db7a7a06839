//! Why the listings (or the write call) of a query cannot be made from the values it gave: the
//! one error of request building, shared by the workspace URL and the request paths.

/// Why the listings of a query cannot be made from the values it gave. The Postgres-facing
/// layer words each one for its table and server.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// A required request column has no value.
    MissingValue { column: &'static str },
    /// A value that cannot stand in a request path (empty, `.` or `..`).
    Unusable { column: &'static str, value: String },
    /// A deployment name that is not one (it becomes part of a host name).
    BadDeployment { problem: String },
    /// A deployment outside the server's allowed_deployments.
    NotAllowed { deployment: String, allowed: Vec<String> },
    /// The workspace URL needs a deployment name and none was given.
    NoDeployment,
    /// The workspace URL does not make a usable URL.
    BadWorkspaceUrl { problem: String },
    /// More listings than the limit.
    TooManyListings { needed: usize, max: usize },
    /// The query has a condition on deployment_name that cannot be sent, and the server does
    /// not say which deployments there are (no allowed_deployments).
    UnboundDeployment,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::excerpt;
        match self {
            RequestError::MissingValue { column } => write!(f, "no value for {column}"),
            RequestError::Unusable { column, value } => write!(f, "{column} {:?} cannot be sent", excerpt(value, 64)),
            RequestError::BadDeployment { problem } => write!(f, "invalid deployment_name: {problem}"),
            RequestError::NotAllowed { deployment, .. } => write!(f, "deployment {:?} is not allowed", excerpt(deployment, 64)),
            RequestError::NoDeployment => write!(f, "no deployment_name to build the workspace URL with"),
            RequestError::BadWorkspaceUrl { problem } => write!(f, "invalid workspace_url: {problem}"),
            RequestError::TooManyListings { needed, max } => write!(f, "{needed} listings, more than max_listings ({max})"),
            RequestError::UnboundDeployment => {
                write!(f, "a condition on deployment_name cannot be sent, and the server has no allowed_deployments")
            }
        }
    }
}
