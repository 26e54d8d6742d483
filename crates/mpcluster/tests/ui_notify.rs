//! The Notifications page of the web UI in a real browser (headless Chromium over WebDriver,
//! see `ui_browser.rs`) against the real `mpcluster serve`: adding targets (the API's field
//! errors next to their fields, the secret never shown back), sending a test message,
//! removing a target. Without chromium/chromedriver the test skips, except under CI=true.
#![allow(clippy::unwrap_used)]

mod common;
mod ui_support;

use fantoccini::Client;
use serde_json::{Value, json};
use ui_support::{browser, click, js, screenshot, start_server, type_into, wait_js, wait_text};

const SECRET: &str = "ui-webhook-secret-0123456789";

async fn rows(c: &Client) -> Value {
    js(
        c,
        "return [...document.querySelectorAll('#notify-table tbody tr[data-id]')]
           .map((r) => [r.dataset.id, r.dataset.type, r.querySelector('.where').textContent]);",
    )
    .await
}

/// Choose the target type in the form (a `change` event, as a person's choice gives).
async fn choose_type(c: &Client, kind: &str) {
    c.execute(
        "const s = document.getElementById('notify-type'); s.value = arguments[0];
         s.dispatchEvent(new Event('change'));",
        vec![json!(kind)],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_targets_add_test_remove() {
    let Some(b) = browser("notification_targets_add_test_remove").await else {
        return;
    };
    let c = &b.client;
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::task::block_in_place(|| {
        start_server(&dir.path().join("store"), &["--no-agent".into()])
    });
    server.open(c, "#/notify").await;
    wait_js(
        c,
        "return document.querySelector('#notify-table tbody td.empty') !== null",
        "the empty list",
    )
    .await;

    // A webhook with a bad id and a short secret: both errors next to their fields.
    type_into(c, "notify-id", "Hook!").await;
    type_into(c, "notify-url", "https://hooks.example.org/mpcluster").await;
    type_into(c, "notify-secret", "short").await;
    click(c, "notify-add").await;
    wait_text(
        c,
        "notify-secret-error",
        "at least 16 characters",
        "the secret's error",
    )
    .await;
    wait_text(
        c,
        "notify-id-error",
        "only lowercase letters, digits and '-'",
        "the id's error",
    )
    .await;
    screenshot(c, "notify-field-errors").await;
    // Corrected: added; the secret shows as "set" only.
    type_into(c, "notify-id", "hook").await;
    type_into(c, "notify-secret", SECRET).await;
    click(c, "notify-add").await;
    wait_text(c, "notify-form-msg", "Added hook.", "the webhook added").await;
    assert_eq!(
        rows(c).await,
        json!([[
            "hook",
            "webhook",
            "https://hooks.example.org/mpcluster (secret set)"
        ]])
    );
    let page = js(c, "return document.body.textContent").await;
    assert!(!page.as_str().unwrap().contains(SECRET));

    // An exec hook: one argument per line.
    choose_type(c, "exec").await;
    type_into(c, "notify-id", "page").await;
    type_into(c, "notify-command", "/bin/sh\n-c\ncat > /dev/null").await;
    click(c, "notify-add").await;
    wait_text(c, "notify-form-msg", "Added page.", "the exec hook added").await;
    let listed = server.get("/api2/json/cluster/multipath/notify");
    let exec = listed["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "page")
        .unwrap()
        .clone();
    assert_eq!(exec["command"], json!(["/bin/sh", "-c", "cat > /dev/null"]));

    // Test: the exec hook accepts it; the webhook (nobody there) does not, and says why.
    js(
        c,
        "document.querySelector('tr[data-id=\"page\"] button.test').click(); return true;",
    )
    .await;
    wait_text(
        c,
        "notify-list-msg",
        "Test message sent to page.",
        "the test sent",
    )
    .await;
    js(
        c,
        "document.querySelector('tr[data-id=\"hook\"] button.test').click(); return true;",
    )
    .await;
    wait_text(
        c,
        "notify-list-msg",
        "The test message to hook was not accepted: webhook https://hooks.example.org/mpcluster",
        "the failed test",
    )
    .await;
    screenshot(c, "notify").await;

    // Remove the webhook (confirmed).
    js(
        c,
        "window.confirm = () => true;
         document.querySelector('tr[data-id=\"hook\"] button.remove').click(); return true;",
    )
    .await;
    wait_text(c, "notify-list-msg", "Removed hook.", "the removal").await;
    assert_eq!(
        rows(c).await,
        json!([["page", "exec", "/bin/sh -c cat > /dev/null"]])
    );
    let listed = server.get("/api2/json/cluster/multipath/notify");
    assert_eq!(listed["targets"].as_array().unwrap().len(), 1);
    b.close().await;
}
