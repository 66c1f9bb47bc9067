//! Who is calling, and what they may reach.
//!
//! One middleware decides for every authenticated route, from the path alone, so no handler
//! can forget a check: a tenant key reaches only `/v1/tenants/{its own name}/...` (any other
//! tenant is answered 404, exactly as if it did not exist, so names cannot be probed), and
//! never the key management or tenant creation that belong to operators (403).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::store::{KEY_PREFIX, Tenant};

/// The authenticated caller, put in the request's extensions.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin token: operators, everything.
    Admin,
    /// A tenant API key: that tenant's resources only.
    Tenant(Tenant),
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("missing bearer token (Authorization: Bearer <admin token or tenant key>)".into())
        })?;
    let principal = if bool::from(presented.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        Principal::Admin
    } else if presented.starts_with(KEY_PREFIX) {
        let tenant = state.store.tenant_for_key(presented).await?;
        Principal::Tenant(tenant.ok_or_else(|| ApiError::Unauthorized("invalid or revoked API key".into()))?)
    } else {
        return Err(ApiError::Unauthorized("invalid token".into()));
    };
    if let Principal::Tenant(own) = &principal {
        authorize_tenant(own, request.method(), request.uri().path())?;
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// What a tenant key may do with `path`.
fn authorize_tenant(own: &Tenant, method: &Method, path: &str) -> Result<(), ApiError> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        // The tenant list: a tenant key sees itself only (filtered by the handler).
        (Some("v1"), Some("tenants"), None | Some(""), _) if method == Method::GET => Ok(()),
        (Some("v1"), Some("tenants"), None | Some(""), _) => {
            Err(ApiError::Forbidden("creating tenants needs the admin token".into()))
        }
        // Compared undecoded: a percent-encoded path never equals a valid name, so this can
        // only refuse too much, never too little.
        (Some("v1"), Some("tenants"), Some(name), _) if name != own.name => {
            Err(ApiError::NotFound(format!("no tenant named {name:?}")))
        }
        (Some("v1"), Some("tenants"), Some(_), Some("keys")) => {
            Err(ApiError::Forbidden("API keys are managed with the admin token".into()))
        }
        // Every tenant's figures: operators only.
        (Some("metrics"), ..) => Err(ApiError::Forbidden("/metrics needs the admin token".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Tenant {
        Tenant { id: crate::event::TenantId::generate(), name: "acme".into(), created_at: 0 }
    }

    #[test]
    fn a_tenant_reaches_its_own_paths_only() {
        let ok = |m: &Method, p: &str| authorize_tenant(&acme(), m, p);
        assert!(ok(&Method::GET, "/v1/tenants").is_ok());
        assert!(ok(&Method::PUT, "/v1/tenants/acme/routes").is_ok());
        assert!(ok(&Method::GET, "/v1/fixtures").is_ok());
        assert!(matches!(ok(&Method::POST, "/v1/tenants"), Err(ApiError::Forbidden(_))));
        assert!(matches!(ok(&Method::GET, "/v1/tenants/globex/events"), Err(ApiError::NotFound(_))));
        assert!(matches!(ok(&Method::GET, "/v1/tenants/globex"), Err(ApiError::NotFound(_))));
        assert!(matches!(ok(&Method::GET, "/v1/tenants/%61cme/events"), Err(ApiError::NotFound(_))));
        assert!(matches!(ok(&Method::POST, "/v1/tenants/acme/keys"), Err(ApiError::Forbidden(_))));
        assert!(matches!(ok(&Method::GET, "/metrics"), Err(ApiError::Forbidden(_))));
    }
}
