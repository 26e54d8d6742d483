//! Sending one message to one target: [`send`]. Webhook (ureq on the blocking pool, signed
//! with HMAC-SHA256), mail over SMTP (lettre; the password read from its file at send time),
//! exec hook (the JSON on stdin). Each has a timeout; a failure says what went wrong, never a
//! secret.

use std::process::Stdio;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use mpcluster_core::notify::{Exec, Message, Smtp, SmtpSecurity, Target, Webhook};
use tokio::io::AsyncWriteExt as _;

/// The header carrying the body's signature: `sha256=<hex HMAC-SHA256 of the body with the
/// target's secret>`.
pub const SIGNATURE_HEADER: &str = "X-Mpcluster-Signature";
/// The header carrying the delivery id (also the body's `id`).
pub const DELIVERY_HEADER: &str = "X-Mpcluster-Delivery";

/// Sending failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The webhook could not be called, or answered with an error status.
    #[error("webhook {url}: {reason}")]
    Webhook {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The mail could not be sent.
    #[error("mail via {server}:{port}: {reason}")]
    Smtp {
        /// The SMTP server.
        server: String,
        /// Its port.
        port: u16,
        /// What happened.
        reason: String,
    },
    /// The hook failed.
    #[error("exec hook {program}: {reason}")]
    Exec {
        /// The program.
        program: String,
        /// What happened (with its stderr).
        reason: String,
    },
}

/// `sha256=<hex>`: the signature of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Send `message` (its `id` is the delivery id) to `target` within `timeout`.
pub async fn send(target: &Target, message: &Message, timeout: Duration) -> Result<(), SendError> {
    match target {
        Target::Webhook(w) => webhook(w, message, timeout).await,
        Target::Smtp(s) => smtp(s, message, timeout).await,
        Target::Exec(e) => exec(e, message, timeout).await,
    }
}

fn cut(s: &str) -> String {
    let s = s.trim();
    if s.len() <= 300 {
        return s.to_owned();
    }
    let end = (0..=300)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}...", &s[..end])
}

async fn webhook(w: &Webhook, message: &Message, timeout: Duration) -> Result<(), SendError> {
    let body = message.to_json();
    let sig = signature(&w.secret, body.as_bytes());
    let url = w.url.clone();
    let id = message.id.clone();
    let err = |reason: String| SendError::Webhook {
        url: w.url.clone(),
        reason,
    };
    let result = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("mpcluster/", env!("CARGO_PKG_VERSION")))
            .build();
        match agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set(SIGNATURE_HEADER, &sig)
            .set(DELIVERY_HEADER, &id)
            .send_string(&body)
        {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                Err(format!("answered HTTP {code}: {}", cut(&text)))
            }
            // Its Display repeats the URL, which the error names already.
            Err(ureq::Error::Transport(t)) => Err(match t.message() {
                Some(m) => format!("{}: {m}", t.kind()),
                None => t.kind().to_string(),
            }),
        }
    })
    .await
    .map_err(|e| err(format!("the sending task failed: {e}")))?;
    result.map_err(err)
}

async fn smtp(s: &Smtp, message: &Message, timeout: Duration) -> Result<(), SendError> {
    let err = |reason: String| SendError::Smtp {
        server: s.server.clone(),
        port: s.port,
        reason,
    };
    let mut mail = lettre::Message::builder()
        .message_id(Some(format!("<{}@mpcluster>", message.id)))
        .from(
            s.from
                .parse()
                .map_err(|e| err(format!("sender {:?}: {e}", s.from)))?,
        )
        .subject(message.subject.clone())
        .header(ContentType::TEXT_PLAIN);
    for to in &s.to {
        mail = mail.to(to
            .parse()
            .map_err(|e| err(format!("recipient {to:?}: {e}")))?);
    }
    let mail = mail
        .body(message.text.clone())
        .map_err(|e| err(format!("cannot build the mail: {e}")))?;
    let builder = match s.security {
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.server),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.server)
            .map_err(|e| err(e.to_string()))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.server)
            .map_err(|e| err(e.to_string()))?,
    };
    let mut builder = builder.port(s.port).timeout(Some(timeout));
    if let (Some(user), Some(file)) = (&s.username, &s.password_file) {
        let password = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| err(format!("cannot read the password file {file}: {e}")))?;
        let password = password.trim_end_matches(['\r', '\n']).to_owned();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    let transport = builder.build();
    match tokio::time::timeout(timeout * 2, transport.send(mail)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(err(mpcluster_core::error_chain(&e))),
        Err(_) => Err(err(format!(
            "no answer within {} s",
            (timeout * 2).as_secs()
        ))),
    }
}

async fn exec(e: &Exec, message: &Message, timeout: Duration) -> Result<(), SendError> {
    let program = e.command.first().cloned().unwrap_or_default();
    let err = |reason: String| SendError::Exec {
        program: program.clone(),
        reason,
    };
    let mut child = tokio::process::Command::new(&program)
        .args(e.command.iter().skip(1))
        .env("MPCLUSTER_DELIVERY", &message.id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot start it: {e}")))?;
    let body = message.to_json();
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its stdin is its own business: not an error.
            let _ = stdin.write_all(body.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(err(format!(
            "did not finish within {:.1} s (killed)",
            timeout.as_secs_f64()
        ))),
        Ok(Err(e)) => Err(err(format!("cannot wait for it: {e}"))),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(err(format!(
            "{}: {}",
            out.status,
            cut(&String::from_utf8_lossy(&out.stderr))
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signature_is_hmac_sha256_rfc4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn exec_hook_gets_the_json_and_its_failures_name_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.json");
        let m = mpcluster_core::notify::test_message(
            &mpcluster_core::notify::TargetId::new("x").unwrap(),
            1_700_000_000,
        );
        let ok = Target::Exec(Exec {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "cat > \"$1\"; test \"$MPCLUSTER_DELIVERY\" = \"$2\"".into(),
                "sh".into(),
                out.display().to_string(),
                m.id.clone(),
            ],
        });
        send(&ok, &m, Duration::from_secs(10)).await.unwrap();
        let got: Message = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(got, m);
        let failing = Target::Exec(Exec {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo 'pager unreachable' >&2; exit 3".into(),
            ],
        });
        let err = send(&failing, &m, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec hook /bin/sh: exit status: 3: pager unreachable"
        );
        let slow = Target::Exec(Exec {
            command: vec!["/bin/sleep".into(), "30".into()],
        });
        let err = send(&slow, &m, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec hook /bin/sleep: did not finish within 0.3 s (killed)"
        );
        let missing = Target::Exec(Exec {
            command: vec!["/nonexistent/hook".into()],
        });
        let err = send(&missing, &m, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("exec hook /nonexistent/hook: cannot start it:"),
            "{err}"
        );
        // A webhook nobody listens on.
        let hook = Target::Webhook(Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            secret: "0123456789abcdef".into(),
        });
        let err = send(&hook, &m, Duration::from_secs(2)).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("webhook http://127.0.0.1:9/hook: "),
            "{err}"
        );
    }
}
