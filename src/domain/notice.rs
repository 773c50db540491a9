//! The emails an account's owner gets about security events: subject, plain text and
//! HTML, from the event's type and the facts of its webhook payload.

/// What one email says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Facts about the event, as recorded.
pub struct Facts<'a> {
    pub issuer: &'a str,
    pub event_type: &'a str,
    /// RFC 3339.
    pub when: &'a str,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub details: &'a serde_json::Value,
}

/// Backup codes left at or under which the email says they are running low.
pub const BACKUP_CODES_LOW: i64 = 3;

/// The email for an event, or `None` for a type no email is sent for.
pub fn notice(facts: &Facts<'_>) -> Option<Notice> {
    let issuer = facts.issuer;
    let (subject, lead, advice) = match facts.event_type {
        "new_device_sign_in" => (
            format!("{issuer}: sign-in from a new device"),
            "Your account was signed in to from a device it has not used recently.".to_owned(),
            "If this was you, there is nothing to do. If not, change your password now and sign out every session.",
        ),
        "two_factor_disabled" => (
            format!("{issuer}: two-factor authentication turned off"),
            "Two-factor authentication was turned off for your account.".to_owned(),
            "If this was not you, change your password and turn two-factor authentication on again.",
        ),
        "two_factor_reset" => (
            format!("{issuer}: two-factor authentication reset by an operator"),
            "An operator turned two-factor authentication off for your account.".to_owned(),
            "Turn it on again from your account's security page.",
        ),
        "backup_code_used" => {
            let remaining = facts.details["remaining"].as_i64().unwrap_or(0);
            let subject = if remaining <= BACKUP_CODES_LOW {
                format!("{issuer}: backup codes running low ({remaining} left)")
            } else {
                format!("{issuer}: a backup code was used")
            };
            (
                subject,
                format!("A backup code was used to sign in to your account. {remaining} remain."),
                "If this was not you, change your password. Generate new backup codes before they run out.",
            )
        }
        "password_changed" => (
            format!("{issuer}: password changed"),
            "The password of your account was changed.".to_owned(),
            "If this was not you, reset your password at once and contact your administrator.",
        ),
        "second_factor_locked" => (
            format!("{issuer}: sign-in locked after failed codes"),
            "Too many wrong codes were entered for your account: the second step of sign-in is locked for a while.".to_owned(),
            "Someone may know your password. If this was not you, change it.",
        ),
        _ => return None,
    };
    let ip = facts.ip_address.unwrap_or("unknown");
    let device = super::device::user_agent_family(facts.user_agent);
    let text = format!(
        "{lead}\n\nWhen: {}\nAddress: {ip}\nDevice: {device}\n\n{advice}\n\n-- {issuer}\n",
        facts.when
    );
    let html = format!(
        "<!DOCTYPE html><html><body><p>{}</p><table><tr><td>When</td><td>{}</td></tr>\
         <tr><td>Address</td><td>{}</td></tr><tr><td>Device</td><td>{}</td></tr></table>\
         <p>{}</p><p>&mdash; {}</p></body></html>",
        escape(&lead),
        escape(facts.when),
        escape(ip),
        escape(&device),
        escape(advice),
        escape(issuer)
    );
    Some(Notice {
        subject,
        text,
        html,
    })
}

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_low_codes_are_said() {
        let details = serde_json::json!({"remaining": 2});
        let n = notice(&Facts {
            issuer: "Tessera <b>",
            event_type: "backup_code_used",
            when: "2026-01-01T00:00:00Z",
            ip_address: Some("192.0.2.1"),
            user_agent: Some("<script>/1"),
            details: &details,
        })
        .unwrap();
        assert!(n.subject.contains("running low (2 left)"));
        assert!(!n.html.contains("<script>") && !n.html.contains("<b>"));
        assert!(n.text.contains("192.0.2.1"));
        assert!(
            notice(&Facts {
                event_type: "login_failed",
                ..Facts {
                    issuer: "T",
                    event_type: "",
                    when: "",
                    ip_address: None,
                    user_agent: None,
                    details: &details
                }
            })
            .is_none()
        );
    }
}
