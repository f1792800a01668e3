//! baton's provisioning one-shots: `--grant-entitlement <entitlement id> --grant-principal <id>
//! --grant-principal-type <resource type>` and `--revoke-grant <grant id>` (c1z-format.md
//! section 6). Ids are resolved against the store of `state-dir`; the outcome is printed as one
//! JSON line on stdout, with baton's annotation (`GrantAlreadyExists`, `GrantAlreadyRevoked`)
//! when nothing had to change. Without `--provisioning` it refuses before opening the store or
//! signing in to Microsoft.

use std::sync::Arc;

use clap::Args;
use serde_json::json;

use crate::config::Config;
use crate::provision::{GrantOutcome, PrincipalRef, ProvisionError, Provisioner, RevokeOutcome};
use crate::store::StoreUse;
use crate::sync::setup;

#[derive(Debug, Clone, Default, Args)]
pub struct OneShotArgs {
    /// Grant this entitlement (id as in the .c1z) to --grant-principal, then exit
    #[arg(
        long,
        env = "BATON_GRANT_ENTITLEMENT",
        value_name = "ENTITLEMENT_ID",
        requires_all = ["grant_principal", "grant_principal_type"],
        conflicts_with = "revoke_grant"
    )]
    pub grant_entitlement: Option<String>,
    /// The principal's resource id, for --grant-entitlement
    #[arg(
        long,
        env = "BATON_GRANT_PRINCIPAL",
        value_name = "RESOURCE_ID",
        requires = "grant_entitlement"
    )]
    pub grant_principal: Option<String>,
    /// The principal's resource type (user, group, enterprise_application, managed_identity)
    #[arg(
        long,
        env = "BATON_GRANT_PRINCIPAL_TYPE",
        value_name = "RESOURCE_TYPE",
        requires = "grant_entitlement"
    )]
    pub grant_principal_type: Option<String>,
    /// Revoke this grant (id as in the .c1z), then exit
    #[arg(long, env = "BATON_REVOKE_GRANT", value_name = "GRANT_ID")]
    pub revoke_grant: Option<String>,
}

impl OneShotArgs {
    pub fn requested(&self) -> bool {
        self.grant_entitlement.is_some() || self.revoke_grant.is_some()
    }
}

/// Runs the one-shot: one grant or one revoke. Fails (exit 1) on any error, having written
/// nothing more than Microsoft accepted.
pub async fn run(config: &Config, args: &OneShotArgs) -> anyhow::Result<()> {
    // Refused here, before the client is built: a refusal must not fetch a token (nor need
    // Microsoft to be reachable). `Provisioner` refuses the same way for its other callers.
    if !config.options.provisioning {
        return Err(ProvisionError::Disabled.into());
    }
    let store = Arc::new(setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::Rounds,
    )?);
    let client = setup::connect(config).await?;
    let provisioner = Provisioner::new(client, store, config.options.provisioning);
    let line = match (&args.grant_entitlement, &args.revoke_grant) {
        (Some(entitlement), _) => {
            let principal = PrincipalRef {
                resource_type: args.grant_principal_type.clone().unwrap_or_default(),
                id: args.grant_principal.clone().unwrap_or_default(),
            };
            let outcome = provisioner.grant(entitlement, &principal).await?;
            json!({
                "grant": format!("{entitlement}:{}:{}", principal.resource_type, principal.id),
                "outcome": match outcome {
                    GrantOutcome::Granted => "granted",
                    GrantOutcome::AlreadyExists => "already_exists",
                },
                "annotations": type_urls(&outcome.annotations()),
            })
        }
        (None, Some(grant)) => {
            let outcome = provisioner.revoke(grant).await?;
            json!({
                "grant": grant,
                "outcome": match outcome {
                    RevokeOutcome::Revoked => "revoked",
                    RevokeOutcome::AlreadyRevoked => "already_revoked",
                },
                "annotations": type_urls(&outcome.annotations()),
            })
        }
        (None, None) => return Ok(()),
    };
    tracing::info!(result = %line, "provisioning done");
    println!("{line}");
    Ok(())
}

fn type_urls(annotations: &[crate::model::proto::Any]) -> Vec<String> {
    annotations.iter().map(|a| a.type_url.clone()).collect()
}
