//! `GET /api/v3/runs/{runId}`: every status in both vocabularies, the
//! catalogue, keys, determinism.

use crate::support::{DEV_KEY, config, retrieve, start};
use hyper::StatusCode;
use std::collections::BTreeSet;
use trigger_mock::model::{ApiVersion, EngineStatus};

/// The server's mapping (contract §2.2), written out independently of the code.
const MAPPING: [(&str, &str, &str); 17] = [
    ("DELAYED", "DELAYED", "DELAYED"),
    ("PENDING_VERSION", "PENDING_VERSION", "PENDING_VERSION"),
    ("WAITING_FOR_DEPLOY", "PENDING_VERSION", "WAITING_FOR_DEPLOY"),
    ("PENDING", "QUEUED", "QUEUED"),
    ("DEQUEUED", "DEQUEUED", "EXECUTING"),
    ("EXECUTING", "EXECUTING", "EXECUTING"),
    ("RETRYING_AFTER_FAILURE", "EXECUTING", "REATTEMPTING"),
    ("PAUSED", "WAITING", "FROZEN"),
    ("WAITING_TO_RESUME", "WAITING", "FROZEN"),
    ("COMPLETED_SUCCESSFULLY", "COMPLETED", "COMPLETED"),
    ("CANCELED", "CANCELED", "CANCELED"),
    ("COMPLETED_WITH_ERRORS", "FAILED", "FAILED"),
    ("INTERRUPTED", "FAILED", "INTERRUPTED"),
    ("CRASHED", "CRASHED", "CRASHED"),
    ("SYSTEM_FAILURE", "SYSTEM_FAILURE", "SYSTEM_FAILURE"),
    ("EXPIRED", "EXPIRED", "EXPIRED"),
    ("TIMED_OUT", "TIMED_OUT", "TIMED_OUT"),
];

#[tokio::test]
async fn every_engine_status_in_both_versions() {
    let server = start(&config()).await;
    let mut seen = [BTreeSet::new(), BTreeSet::new()];
    for (engine, current, unversioned) in MAPPING {
        let id = format!("run_{}", engine.to_ascii_lowercase());
        for (i, (version, expected)) in
            [(ApiVersion::V20250716, current), (ApiVersion::Unversioned, unversioned)].into_iter().enumerate()
        {
            let reply = retrieve(&server, &id, DEV_KEY, version).await;
            assert_eq!(reply.status, StatusCode::OK, "{id}");
            let body = reply.json();
            assert_eq!(body["status"], expected, "{id} {version:?}");
            assert_eq!(body["id"], id.as_str());
            seen[i].insert(expected);
            insta::assert_snapshot!(
                format!("status__{}__{}", engine.to_ascii_lowercase(), version.slug()),
                reply.snapshot()
            );
        }
    }
    assert_eq!(seen[0].len(), 13, "the 13 statuses of the v4 SDK");
    assert_eq!(seen[1].len(), 15, "the documented statuses plus PENDING_VERSION, EXPIRED and TIMED_OUT");
    server.shutdown().await;
}

#[tokio::test]
async fn api_status_names_are_also_run_ids() {
    let server = start(&config()).await;
    for (alias, current) in [
        ("queued", "QUEUED"),
        ("waiting", "WAITING"),
        ("completed", "COMPLETED"),
        ("failed", "FAILED"),
        ("reattempting", "EXECUTING"),
        ("frozen", "WAITING"),
    ] {
        let body = retrieve(&server, &format!("run_{alias}_42"), DEV_KEY, ApiVersion::V20250716).await.json();
        assert_eq!(body["status"], current, "{alias}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_catalogue_serves_every_entry_in_every_rendering() {
    let server = start(&config()).await;
    let world = config().build_app().unwrap().world();
    let entries = world.store.entries();
    assert!(entries.len() >= EngineStatus::ALL.len());
    for entry in entries {
        for version in ApiVersion::ALL {
            for key in [DEV_KEY, "tr_prod_tests_1", "pk_dev_tests_1"] {
                let reply = retrieve(&server, &entry.id, key, version).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", entry.id);
                assert_eq!(reply.json()["status"], entry.status.render(version).name());
            }
        }
    }
    for id in ["run_demo_child", "run_demo_scheduled", "run_demo_failed", "run_demo_expired", "run_demo_batch_item"] {
        let reply = retrieve(&server, id, "tr_prod_tests_1", ApiVersion::V20250716).await;
        insta::assert_snapshot!(format!("catalogue__{id}"), reply.snapshot());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn related_runs_point_both_ways() {
    let server = start(&config()).await;
    let child = retrieve(&server, "run_demo_child", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(child["depth"], 2);
    assert_eq!(child["relatedRuns"]["root"]["id"], "run_demo_root");
    assert_eq!(child["relatedRuns"]["parent"]["id"], "run_demo_parent");
    assert_eq!(child["relatedRuns"]["children"], serde_json::json!([]));
    let parent = retrieve(&server, "run_demo_parent", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(parent["relatedRuns"]["children"][0]["id"], "run_demo_child");
    assert_eq!(parent["relatedRuns"]["root"]["id"], "run_demo_root");
    assert!(parent["relatedRuns"].get("parent").is_some());
    let root = retrieve(&server, "run_demo_root", DEV_KEY, ApiVersion::V20250716).await.json();
    assert!(root["relatedRuns"].get("root").is_none() && root["relatedRuns"].get("parent").is_none());
    assert_eq!(root["depth"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn costs_are_zero_for_development_keys_only() {
    let server = start(&config()).await;
    let dev = retrieve(&server, "run_demo_completed", DEV_KEY, ApiVersion::V20250716).await;
    assert!(dev.body.windows(16).any(|w| w == b"\"costInCents\":0,"), "integral zero, as JSON.stringify");
    assert_eq!(dev.json()["baseCostInCents"], 0);
    for key in ["tr_prod_x1", "tr_stg_x1", "tr_preview_x1"] {
        let body = retrieve(&server, "run_demo_completed", key, ApiVersion::V20250716).await.json();
        assert!(body["costInCents"].as_f64().unwrap() > 0.0, "{key}");
        assert!(body["baseCostInCents"].as_f64().unwrap() > 0.0, "{key}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn public_keys_get_no_payload_or_output() {
    let server = start(&config()).await;
    let secret = retrieve(&server, "run_demo_completed", DEV_KEY, ApiVersion::V20250716).await.json();
    assert!(secret.get("payload").is_some() && secret.get("output").is_some());
    let public = retrieve(&server, "run_demo_completed", "pk_dev_tests_1", ApiVersion::V20250716).await;
    let body = public.json();
    assert!(body.get("payload").is_none() && body.get("output").is_none());
    assert_eq!(body["id"], "run_demo_completed");
    insta::assert_snapshot!("public_key__run_demo_completed", public.snapshot());
    server.shutdown().await;
}

#[tokio::test]
async fn generated_runs_are_deterministic_and_valid() {
    let ids: Vec<String> = (0..150).map(|i| format!("run_cm{i:03}x{}", i * 7919 % 1000)).collect();
    let a = start(&config()).await;
    let b = start(&config()).await;
    let mut statuses = BTreeSet::new();
    for id in &ids {
        for version in ApiVersion::ALL {
            let one = retrieve(&a, id, "tr_prod_k", version).await;
            let two = retrieve(&b, id, "tr_prod_k", version).await;
            assert_eq!(one.status, StatusCode::OK);
            assert_eq!(one.body, two.body, "{id}: same seed, id and clock give the same bytes");
            statuses.insert(one.json()["status"].as_str().unwrap().to_owned());
        }
    }
    assert!(statuses.len() >= 14, "generated runs span the statuses: {statuses:?}");
    let mut other = config();
    other.seed = 99;
    let c = start(&other).await;
    let differing = {
        let mut n = 0;
        for id in ids.iter().take(20) {
            let x = retrieve(&a, id, DEV_KEY, ApiVersion::V20250716).await.body;
            let y = retrieve(&c, id, DEV_KEY, ApiVersion::V20250716).await.body;
            n += usize::from(x != y);
        }
        n
    };
    assert_eq!(differing, 20, "--seed changes every generated run");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

/// Generated runs keep their bodies in a cache that empties a shard when it
/// fills. Served from many threads at once, in every rendering, while a
/// sweep of thousands of ids empties the shards, each body is still the one
/// a server that saw nothing else sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_generated_bodies_hold_while_the_cache_churns() {
    let busy = std::sync::Arc::new(start(&config()).await);
    let calm = std::sync::Arc::new(start(&config()).await);
    // More ids than the cache keeps (32 shards of at most 128).
    let sweep = {
        let busy = busy.clone();
        tokio::spawn(async move {
            for i in 0..4500 {
                let reply = retrieve(&busy, &format!("run_sweep{i}"), DEV_KEY, ApiVersion::Unversioned).await;
                assert_eq!(reply.status, StatusCode::OK);
            }
        })
    };
    let mut checks = tokio::task::JoinSet::new();
    for task in 0..12u64 {
        let (busy, calm) = (busy.clone(), calm.clone());
        checks.spawn(async move {
            let mut state = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |n: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % n
            };
            for _ in 0..120 {
                let id = format!("run_churn{}", next(40));
                let key = ["tr_prod_k", DEV_KEY][next(2) as usize];
                let version = ApiVersion::ALL[next(ApiVersion::ALL.len() as u64) as usize];
                let got = retrieve(&busy, &id, key, version).await;
                let want = retrieve(&calm, &id, key, version).await;
                assert_eq!(got.status, StatusCode::OK);
                assert_eq!(got.body, want.body, "{id} for {key} in {version:?}");
            }
        });
    }
    while let Some(done) = checks.join_next().await {
        done.unwrap();
    }
    sweep.await.unwrap();
    for s in [busy, calm] {
        std::sync::Arc::into_inner(s).unwrap().shutdown().await;
    }
}

#[tokio::test]
async fn the_clock_moves_generated_timestamps() {
    let a = start(&config()).await;
    let mut later = config();
    later.clock = trigger_mock::clock::Clock::frozen(crate::support::NOW.plus(86_400_000));
    let b = start(&later).await;
    let x = retrieve(&a, "run_completed", DEV_KEY, ApiVersion::V20250716).await.json();
    let y = retrieve(&b, "run_completed", DEV_KEY, ApiVersion::V20250716).await.json();
    assert_eq!(x["createdAt"].as_str().unwrap()[..10], *"2025-12-31");
    assert_eq!(y["createdAt"].as_str().unwrap()[..10], *"2026-01-01");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn no_generate_leaves_only_the_catalogue() {
    let mut cfg = config();
    cfg.generate = false;
    let server = start(&cfg).await;
    assert_eq!(retrieve(&server, "run_completed", DEV_KEY, ApiVersion::V20250716).await.status, StatusCode::NOT_FOUND);
    assert_eq!(retrieve(&server, "run_demo_completed", DEV_KEY, ApiVersion::V20250716).await.status, StatusCode::OK);
    server.shutdown().await;
}
