//! Which PIM schedule rows are grants of their own principal. Eligibility and assignment
//! schedules (and their instances) of Graph and ARM carry `memberType`: `Direct` when the
//! principal itself holds the schedule, `Group` when it is the expansion of a group's schedule
//! to one of its members, `Inherited` when it comes from a scope above. Only a direct row is
//! the principal's grant (DATA_MODEL.md: "only direct (`memberType` Direct) ... schedules
//! count"); the others repeat a grant that another row already holds, for another principal
//! or scope (roleEligibilityScheduleInstance, unifiedRoleEligibilityScheduleInstance and
//! privilegedAccessGroupEligibilitySchedule, microsoft-graph-docs-contrib; RoleEligibility
//! ScheduleInstances - List For Scope, azure-rest-api-specs authorization).

use serde_json::Value;

/// Whether a row (Graph: `memberType` at the top; ARM: under `properties`) is its principal's
/// own grant. A row without `memberType` (role assignments, role definitions) is.
pub fn is_direct(row: &Value) -> bool {
    let member_type = row
        .get("memberType")
        .or_else(|| row.get("properties").and_then(|p| p.get("memberType")))
        .and_then(Value::as_str);
    member_type.is_none_or(|kind| kind.eq_ignore_ascii_case("Direct"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_direct_rows_and_rows_without_a_member_type_are_grants() {
        assert!(is_direct(&json!({"memberType": "Direct"})));
        assert!(is_direct(&json!({"properties": {"memberType": "direct"}})));
        assert!(is_direct(&json!({"properties": {"scope": "/"}})));
        assert!(!is_direct(&json!({"memberType": "Group"})));
        assert!(!is_direct(
            &json!({"properties": {"memberType": "Inherited"}})
        ));
    }
}
