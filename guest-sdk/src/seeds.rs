//! Typed payloads for the vendor webhooks Switchyard ships plugins for.
//!
//! Each struct is the event's *data* (the vendor envelope's `data` or `payload` object), with
//! field names exactly as the vendor sends them. Unknown fields are ignored, so new vendor
//! fields never break a plugin. The rule for optional fields: the entity's own id and the
//! fields an event is about (an outcome's type, a goal's pace) are required; everything else
//! is an `Option` (or defaults), because vendors omit or null them freely.
//!
//! Parse with [`crate::Event::data`]:
//!
//! ```
//! # fn f(ev: &switchyard_guest::Event) -> switchyard_guest::Result<()> {
//! use switchyard_guest::seeds::CallOutcomeTagged;
//! let tagged: CallOutcomeTagged = ev.data()?;
//! # Ok(()) }
//! ```

pub use self::call_tracking::*;
pub use self::coaching::*;
pub use self::crm::*;
pub use self::sales_training::*;

/// Call-tracking product (`{event, timestamp, data}` envelope; snake_case fields, numeric ids).
pub mod call_tracking {
    use serde::{Deserialize, Serialize};

    /// The caller, as attached to calls, conversations and outcomes.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Contact {
        /// Contact id.
        pub id: Option<i64>,
        /// Display name.
        pub name: Option<String>,
        /// Phone number (E.164).
        pub phone: Option<String>,
        /// Email address.
        pub email: Option<String>,
    }

    /// Where the caller came from (marketing attribution).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Attribution {
        /// e.g. `google_ads`.
        pub source: Option<String>,
        /// e.g. `cpc`.
        pub medium: Option<String>,
        /// Campaign name.
        pub campaign: Option<String>,
        /// Landing page URL.
        pub landing_page: Option<String>,
        /// Google click id.
        pub gclid: Option<String>,
        /// e.g. `mobile`.
        pub device_type: Option<String>,
        /// Attribution model, e.g. `session`.
        pub r#type: Option<String>,
    }

    /// `call.outcome_tagged`: an agent tagged a call's outcome.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct CallOutcomeTagged {
        /// Outcome record id.
        pub id: i64,
        /// The call this outcome belongs to.
        pub call_session_id: Option<i64>,
        /// `booked`, `quoted`, `follow_up`, `not_interested`, `no_answer`, `spam`,
        /// `wrong_number` or `other`.
        pub outcome_type: String,
        /// Expected value of the opportunity, in cents.
        pub estimated_value_cents: Option<i64>,
        /// Value realised so far, in cents.
        pub actual_value_cents: Option<i64>,
        /// Revenue attributed to the call, in cents.
        pub revenue_cents: Option<i64>,
        /// Agent's free-text notes.
        pub notes: Option<String>,
        /// The caller.
        pub contact: Option<Contact>,
        /// Marketing attribution.
        pub attribution: Option<Attribution>,
    }

    /// `call.ended`: a call completed, failed or was abandoned.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct CallEnded {
        /// Call id (the `call_session_id` of later outcomes).
        pub id: i64,
        /// `inbound` or `outbound`.
        pub direction: Option<String>,
        /// e.g. `ended`.
        pub status: Option<String>,
        /// Caller number.
        pub from_number: Option<String>,
        /// Called number.
        pub to_number: Option<String>,
        /// Talk time in seconds.
        pub duration_seconds: Option<i64>,
        /// e.g. `completed`.
        pub disposition: Option<String>,
        /// The caller.
        pub contact: Option<Contact>,
        /// Marketing attribution.
        pub attribution: Option<Attribution>,
        /// RFC 3339.
        pub started_at: Option<String>,
        /// RFC 3339.
        pub ended_at: Option<String>,
    }
}

/// Coaching platform (`{id, type, account_id, created_at, data}` envelope; the account id
/// becomes the event subject).
pub mod coaching {
    use serde::{Deserialize, Serialize};

    /// `goal.pace_changed`: the agent moved between `on_pace`, `behind` and `ahead`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct GoalPaceChanged {
        /// Goal id.
        pub goal_id: String,
        /// The new pace.
        pub pace: String,
        /// The pace before this change.
        pub previous_pace: Option<String>,
        /// RFC 3339.
        pub changed_at: Option<String>,
    }

    /// `agent.coaching_insight_created`: a new coaching insight is ready.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct CoachingInsightCreated {
        /// Insight id.
        pub insight_id: String,
        /// One-line summary shown to the agent.
        pub headline: Option<String>,
        /// RFC 3339.
        pub created_at: Option<String>,
    }
}

/// CRM (`{event, timestamp, payload}` envelope; camelCase fields, string ids).
pub mod crm {
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    /// A CRM client (company or person); also embedded in deals.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Client {
        /// Public client id (`cl_...`). Optional here because embedded copies may omit it.
        pub id: Option<String>,
        /// Display name.
        pub name: Option<String>,
        /// e.g. `CL-0001`.
        pub number: Option<String>,
        /// Tax number.
        pub tax_number: Option<String>,
        /// Website URL.
        pub website: Option<String>,
        /// Tenant-defined fields.
        pub custom_fields: Option<Value>,
        /// `company` or `person`.
        pub r#type: Option<String>,
        /// For persons.
        pub first_name: Option<String>,
        /// For persons.
        pub last_name: Option<String>,
        /// Email address.
        pub email: Option<String>,
        /// Phone number.
        pub phone: Option<String>,
    }

    /// `deal.*` payload.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Deal {
        /// Public deal id (`dl_...`).
        pub id: String,
        /// Deal title.
        pub title: Option<String>,
        /// e.g. `DL-0001`.
        pub number: Option<String>,
        /// Deal value in the account currency.
        pub price: Option<f64>,
        /// e.g. `ACTIVE`.
        pub status: Option<String>,
        /// e.g. `HIGH`.
        pub priority: Option<String>,
        /// RFC 3339.
        pub expected_close_date: Option<String>,
        /// RFC 3339.
        pub created_at: Option<String>,
        /// The client, embedded for convenience.
        pub client: Option<Client>,
        /// Pipeline stage name.
        pub stage: Option<String>,
        /// Pipeline stage id.
        pub stage_id: Option<i64>,
        /// Pipeline id.
        pub pipeline_id: Option<i64>,
        /// e.g. `Referral`.
        pub source: Option<String>,
        /// Originating lead id.
        pub lead_id: Option<String>,
        /// Originating lead name.
        pub lead_name: Option<String>,
        /// Owner user id.
        pub owner_id: Option<i64>,
        /// Owner name.
        pub owner_name: Option<String>,
        /// Tenant-defined fields.
        pub custom_fields: Option<Value>,
    }

    /// `lead.*` payload.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Lead {
        /// Public lead id (`ld_...`).
        pub id: String,
        /// Person's name.
        pub name: Option<String>,
        /// Mobile number.
        pub mobile: Option<String>,
        /// Email address.
        pub email: Option<String>,
        /// Second mobile number.
        pub secondary_mobile: Option<String>,
        /// What the lead is about.
        pub title: Option<String>,
        /// Estimated value.
        pub value: Option<f64>,
        /// e.g. `Website`.
        pub source: Option<String>,
        /// RFC 3339.
        pub created_at: Option<String>,
        /// Website URL.
        pub website: Option<String>,
        /// Whether the lead is archived.
        pub archived: Option<bool>,
        /// Stage name.
        pub stage: Option<String>,
        /// Stage id.
        pub stage_id: Option<i64>,
        /// Tenant-defined fields.
        pub custom_fields: Option<Value>,
        /// Owner user id.
        pub owner_id: Option<i64>,
        /// Owner name.
        pub owner_name: Option<String>,
    }

    /// `invoice.*` payload.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Invoice {
        /// Invoice id (`inv_...`).
        pub id: String,
        /// e.g. `INV-0001`.
        pub number: Option<String>,
        /// Client id.
        pub client_id: Option<String>,
        /// Client name.
        pub client_name: Option<String>,
        /// e.g. `SENT`, `PAID`.
        pub status: Option<String>,
        /// Invoice total.
        pub total: Option<f64>,
        /// RFC 3339.
        pub due_date: Option<String>,
        /// Sales person user id.
        pub sales_person_id: Option<i64>,
        /// RFC 3339.
        pub created_at: Option<String>,
    }
}

/// Sales-training product, delivered through Svix (`{id, payload, timestamp, type}` envelope;
/// camelCase fields, UUID ids).
pub mod sales_training {
    use serde::{Deserialize, Serialize};

    /// A user of the sales-training product.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct User {
        /// User id (UUID).
        pub id: String,
        /// Email address.
        pub email: Option<String>,
        /// Display name.
        pub name: Option<String>,
        /// Organisation id (UUID).
        pub org_id: Option<String>,
        /// Role in the organisation.
        pub role: Option<String>,
        /// Team id.
        pub team_id: Option<String>,
        /// The vendor's customer id.
        pub customer_id: Option<String>,
        /// Manager's user id.
        pub manager_id: Option<String>,
        /// Avatar URL.
        pub image: Option<String>,
        /// Account status.
        pub status: Option<String>,
        /// Current practice streak.
        pub streak: Option<f64>,
        /// Longest practice streak.
        pub longest_streak: Option<f64>,
        /// Creation timestamp.
        pub created_at: Option<String>,
    }

    /// An organisation in the sales-training product.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Org {
        /// Organisation id (UUID).
        pub id: String,
        /// Display name.
        pub name: Option<String>,
        /// Logo URL.
        pub image: Option<String>,
        /// Organisation status.
        pub status: Option<String>,
        /// Creation timestamp.
        pub created_at: Option<String>,
    }

    /// Data of `user.created`, `user.updated` and `user.deleted`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct UserPayload {
        /// The user as it is now (or was, for `user.deleted`).
        pub user: User,
    }

    /// Data of `org.*` events.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct OrgPayload {
        /// The organisation as it is now (or was, for `org.deleted`).
        pub org: Org,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vendor_samples() {
        let tagged: CallOutcomeTagged = serde_json::from_str(
            r#"{"id":15,"call_session_id":42,"outcome_type":"booked","estimated_value_cents":250000,
                "actual_value_cents":0,"revenue_cents":250000,"notes":"Kitchen remodel",
                "contact":{"id":456,"name":"Jane Doe","phone":"+18005559876"},
                "attribution":{"source":"google_ads","gclid":"CjwKCAjw...","type":"session"},
                "surprise":true}"#,
        )
        .unwrap();
        assert_eq!(tagged.contact.unwrap().id, Some(456));
        assert_eq!(tagged.attribution.unwrap().r#type.as_deref(), Some("session"));

        let deal: Deal = serde_json::from_str(
            r#"{"id":"dl_def456","title":"Enterprise License","number":"DL-0001","price":25000,
                "client":{"id":"cl_xyz789","name":"Acme Inc.","taxNumber":null,"type":"company"},
                "stage":"Proposal","stageId":11,"customFields":{}}"#,
        )
        .unwrap();
        assert_eq!(deal.client.unwrap().name.as_deref(), Some("Acme Inc."));
        assert_eq!(deal.stage_id, Some(11));

        let user: UserPayload = serde_json::from_str(
            r#"{"user":{"id":"ae7f","email":"e","orgId":"a2de","teamId":"t","longestStreak":42}}"#,
        )
        .unwrap();
        assert_eq!(user.user.org_id.as_deref(), Some("a2de"));
        assert_eq!(user.user.longest_streak, Some(42.0));
    }
}
