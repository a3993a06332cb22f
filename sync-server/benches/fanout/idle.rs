//! `idle`: what the server keeps in memory for documents its connected
//! devices stopped editing, and what loading one again costs an edit.
//! The setup takes longer than the idle time, so documents written first
//! are already unloaded when it ends: the first row edits each to load
//! them all.

use super::*;

pub(super) async fn idle(a: &Args) {
    let wait = a.doc_idle.to_string();
    let server = start_ours(1, &["--doc-idle-seconds", &wait]);
    let writer = device(&server, 0).await;
    let mut written = Vec::new();
    for _ in 0..a.docs {
        let h = create(&writer, "0").await;
        for e in 1..=a.edits {
            set(&h, &e.to_string());
        }
        written.push(h);
    }
    // A second device opens every document and sees its last edit.
    let reader = device(&server, 0).await;
    let last = a.edits.to_string();
    let mut read = Vec::new();
    for h in &written {
        let r = open(&reader, h.document_id(), Duration::from_secs(120))
            .await
            .expect("the reader opens every document");
        until_value(
            r.clone(),
            last.clone(),
            Instant::now(),
            Duration::from_secs(60),
        )
        .await
        .expect("the reader sees every document's last edit");
        read.push(r);
    }
    println!(
        "\nidle: {} documents of {} changes in one workspace, two devices connected throughout, \
         --doc-idle-seconds {}",
        a.docs, a.edits, a.doc_idle
    );
    println!(
        "| moment | documents in memory | live heap | allocator resident | server RSS | edit p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |moment: &str, edits: &[Duration]| {
        println!(
            "| {moment} | {} | {} | {} | {:.0} MiB | {} |",
            server
                .metric("flowkeep_sync_documents_loaded")
                .map_or("-".into(), |d| format!("{d:.0}")),
            mib_cell(server.heap_mib()),
            mib_cell(server.allocator_resident_mib()),
            server.rss_mib().0,
            if edits.is_empty() {
                "-".into()
            } else {
                format!("{} / {}", pct(edits, 0.5), pct(edits, 0.99))
            }
        )
    };
    // One edit to each document, one at a time, and how long until the
    // reader sees it.
    let edit_each = |round: usize| {
        let want = format!("round {round}");
        let (written, read) = (&written, &read);
        async move {
            let mut took = Vec::new();
            for (w, r) in written.iter().zip(read) {
                let since = Instant::now();
                set(w, &want);
                if let Some(d) =
                    until_value(r.clone(), want.clone(), since, Duration::from_secs(30)).await
                {
                    took.push(d);
                }
            }
            took.sort();
            took
        }
    };
    row("one edit to each", &edit_each(0).await);
    tokio::time::sleep(Duration::from_secs(a.doc_idle + 5)).await;
    row(&format!("{} s later", a.doc_idle + 5), &[]);
    row("one edit to each (loads it again)", &edit_each(1).await);
    row("another edit to each", &edit_each(2).await);
    writer.stop().await;
    reader.stop().await;
}
