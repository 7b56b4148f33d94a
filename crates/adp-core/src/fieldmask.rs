//! Applies an AIP-134 `update_mask` to a stored resource, generically over any
//! message, by walking the descriptors with prost-reflect.

use prost_reflect::{DynamicMessage, ReflectMessage, Value};

use crate::error::{ApiError, FieldViolation};

/// Fields the server owns: ignored in a mask, never copied from the patch.
const OUTPUT_ONLY: &[&str] = &["create_time", "update_time", "etag"];

/// Returns `stored` with the masked fields taken from `patch`.
///
/// An empty mask means every field the patch populates; `*` means every field.
/// `name` may appear only if it is unchanged (it identifies the resource).
pub fn apply_update_mask<M>(
    stored: &M,
    patch: &M,
    paths: &[String],
    mask_field: &str,
) -> Result<M, ApiError>
where
    M: ReflectMessage + Default,
{
    let mut target = stored.transcode_to_dynamic();
    let source = patch.transcode_to_dynamic();
    let descriptor = target.descriptor();

    let paths: Vec<String> = if paths.is_empty() {
        descriptor
            .fields()
            .filter(|f| source.has_field(f))
            .map(|f| f.name().to_owned())
            .collect()
    } else if paths.iter().any(|p| p == "*") {
        descriptor.fields().map(|f| f.name().to_owned()).collect()
    } else {
        paths.to_vec()
    };

    let mut violations = Vec::new();
    for path in &paths {
        let segments: Vec<&str> = path.split('.').collect();
        if OUTPUT_ONLY.contains(&segments[0]) {
            continue;
        }
        if segments[0] == "name" {
            if segments.len() == 1
                && target.get_field_by_name("name") == source.get_field_by_name("name")
            {
                continue;
            }
            violations.push(FieldViolation::new(
                mask_field,
                "update_mask.immutable_field",
                "name cannot be changed",
            ));
            continue;
        }
        if let Err(message) = copy_path(&mut target, &source, &segments) {
            violations.push(FieldViolation::new(
                mask_field,
                "update_mask.unknown_field",
                format!("{path:?}: {message}"),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::invalid(violations));
    }
    target
        .transcode_to::<M>()
        .map_err(|_| ApiError::internal("could not apply the update mask"))
}

fn copy_path(
    target: &mut DynamicMessage,
    source: &DynamicMessage,
    segments: &[&str],
) -> Result<(), String> {
    let descriptor = target.descriptor();
    let Some(field) = descriptor.get_field_by_name(segments[0]) else {
        return Err(format!(
            "{} has no field {:?}",
            descriptor.name(),
            segments[0]
        ));
    };
    if segments.len() == 1 {
        if source.has_field(&field) {
            target.set_field(&field, source.get_field(&field).into_owned());
        } else {
            target.clear_field(&field);
        }
        return Ok(());
    }
    if field.is_list() || field.is_map() || field.kind().as_message().is_none() {
        return Err(format!(
            "{:?} is not a message, so it has no subfields",
            segments[0]
        ));
    }
    let source_child = match source.get_field(&field).as_message() {
        Some(message) => message.clone(),
        None => return Err("not a message".to_owned()),
    };
    if !target.has_field(&field) {
        // Setting a oneof member clears its siblings, which is what the caller asked for.
        let empty = DynamicMessage::new(source_child.descriptor());
        target.set_field(&field, Value::Message(empty));
    }
    let Some(Value::Message(child)) = target.get_field_mut(&field).into() else {
        return Err("not a message".to_owned());
    };
    copy_path(child, &source_child, &segments[1..])
}

#[cfg(test)]
mod tests {
    use adp_api::v1 as pb;
    use adp_api::v1::mcp_server::{Auth, Source};

    use super::*;

    fn stored() -> pb::McpServer {
        pb::McpServer {
            name: "tickets".into(),
            description: "old".into(),
            enabled: true,
            source: Some(Source::Remote(pb::RemoteMcp {
                url: "https://a.example/mcp".into(),
                transport: 1,
            })),
            auth: Some(Auth::UserOauth(pb::UserOAuthAuth {
                provider_name: "github".into(),
                required_scopes: vec!["repo".into()],
                token_injection: None,
            })),
            etag: "\"v1\"".into(),
            ..Default::default()
        }
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn masked_scalar_and_nested_fields_change_others_stay() {
        let patch = pb::McpServer {
            name: "tickets".into(),
            description: "new".into(),
            auth: Some(Auth::UserOauth(pb::UserOAuthAuth {
                required_scopes: vec!["repo".into(), "read:org".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        let merged = apply_update_mask(
            &stored(),
            &patch,
            &paths(&["description", "user_oauth.required_scopes"]),
            "update_mask",
        )
        .expect("merge");
        assert_eq!(merged.description, "new");
        assert!(merged.enabled, "enabled was not in the mask");
        let Some(Auth::UserOauth(user)) = merged.auth else {
            panic!("auth kept")
        };
        assert_eq!(user.provider_name, "github");
        assert_eq!(user.required_scopes, vec!["repo", "read:org"]);
    }

    #[test]
    fn setting_another_oneof_member_replaces_the_old_one() {
        let patch = pb::McpServer {
            auth: Some(Auth::None(pb::NoAuth {})),
            ..Default::default()
        };
        let merged =
            apply_update_mask(&stored(), &patch, &paths(&["none"]), "update_mask").expect("merge");
        assert!(matches!(merged.auth, Some(Auth::None(_))));
    }

    #[test]
    fn empty_mask_takes_populated_fields_and_masked_false_clears() {
        let patch = pb::McpServer {
            description: "patched".into(),
            ..Default::default()
        };
        let merged = apply_update_mask(&stored(), &patch, &[], "update_mask").expect("merge");
        assert_eq!(merged.description, "patched");
        assert!(merged.enabled);
        let merged = apply_update_mask(&stored(), &patch, &paths(&["enabled"]), "update_mask")
            .expect("merge");
        assert!(!merged.enabled);
    }

    #[test]
    fn unknown_and_immutable_paths_are_named() {
        let patch = pb::McpServer {
            name: "other".into(),
            ..Default::default()
        };
        let error = apply_update_mask(
            &stored(),
            &patch,
            &paths(&["name", "nope", "description.x"]),
            "update_mask",
        )
        .expect_err("rejected");
        let rules: Vec<&str> = error
            .violations
            .iter()
            .map(|v| v.rule_id.as_str())
            .collect();
        assert_eq!(
            rules,
            [
                "update_mask.immutable_field",
                "update_mask.unknown_field",
                "update_mask.unknown_field"
            ]
        );
    }

    #[test]
    fn output_only_fields_are_ignored() {
        let patch = pb::McpServer {
            etag: "x".into(),
            ..Default::default()
        };
        let merged = apply_update_mask(
            &stored(),
            &patch,
            &paths(&["etag", "create_time"]),
            "update_mask",
        )
        .expect("merge");
        assert_eq!(merged.etag, "\"v1\"");
    }
}
