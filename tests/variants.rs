//! The three variants of the sample service, built and measured by the
//! real binary against the real engine, checked against the engine itself.

mod common;

use common::{docker, measured, measured_project, run_in_image, runtime};

const VARIANTS: [&str; 3] = ["week2", "multi-stage", "custom-base"];
const OPTIMIZED: [&str; 2] = ["multi-stage", "custom-base"];

fn size(variant: &str) -> u64 {
    measured(variant)["size_bytes"].as_u64().unwrap()
}

#[test]
fn measure_reports_every_variant_in_config_order() {
    let (_, json) = measured_project();

    let names: Vec<_> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();

    assert_eq!(names, VARIANTS);
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["baseline"], "week2");
}

#[test]
fn measured_size_and_layers_are_what_the_engine_reports() {
    let docker = docker();
    for variant in VARIANTS {
        let m = measured(variant);
        let image = runtime()
            .block_on(docker.inspect_image(m["image_id"].as_str().unwrap()))
            .unwrap();
        let layers = image.root_fs.unwrap().layers.unwrap();

        assert_eq!(m["size_bytes"].as_i64(), image.size, "{variant}");
        assert_eq!(
            m["layers"].as_u64(),
            Some(layers.len() as u64),
            "{variant}"
        );
    }
}

#[test]
fn optimized_variants_are_at_least_sixty_percent_smaller() {
    let baseline = size("week2");

    for variant in OPTIMIZED {
        let reduction = 1.0 - size(variant) as f64 / baseline as f64;
        assert!(
            reduction >= 0.60,
            "{variant} is only {:.1}% smaller",
            reduction * 100.0
        );
    }
}

#[test]
fn the_custom_base_variant_is_the_smallest_and_75_percent_smaller() {
    let custom = size("custom-base");

    assert!(custom < size("multi-stage"));
    assert!(custom as f64 <= size("week2") as f64 * 0.25);
}

#[test]
fn every_variant_records_its_build_time_and_base_image() {
    for variant in VARIANTS {
        let m = measured(variant);

        assert!(m["build_seconds"].as_f64().unwrap() > 0.0, "{variant}");
        assert!(m["base_image"].is_string(), "{variant}");
    }
    assert_eq!(
        measured("custom-base")["base_image"],
        "yourname/node-base:1.0"
    );
}

#[test]
fn optimized_images_run_as_non_root_in_production_mode() {
    for variant in OPTIMIZED {
        let m = measured(variant);
        let (code, out) = run_in_image(
            m["image"].as_str().unwrap(),
            &[
                "node",
                "-e",
                "console.log(process.getuid(), process.env.NODE_ENV)",
            ],
        );

        assert_eq!(code, 0, "{variant}: {out}");
        assert_ne!(out.split_whitespace().next(), Some("0"), "{variant}");
        assert_eq!(out.split_whitespace().nth(1), Some("production"));
        assert_eq!(m["node_env"], "production");
        assert_eq!(m["healthcheck"], true, "{variant}");
    }
}

#[test]
fn optimized_images_hold_none_of_the_dev_dependencies() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("app/package.json"))
            .unwrap(),
    )
    .unwrap();
    let dev: Vec<&str> = manifest["devDependencies"]
        .as_object()
        .expect("the app has devDependencies")
        .keys()
        .map(String::as_str)
        .collect();
    // Looks for each package in every node_modules folder below the
    // image's working directory (where the app lives), not just where
    // require() would find it first.
    let script = format!(
        r"const fs = require('fs'), path = require('path');
         const dev = {dev:?}; const found = [];
         const walk = (dir, depth) => {{
           if (depth > 6) return;
           let entries; try {{ entries = fs.readdirSync(dir, {{ withFileTypes: true }}); }} catch {{ return; }}
           for (const e of entries) {{
             if (!e.isDirectory() || e.isSymbolicLink()) continue;
             const p = path.join(dir, e.name);
             const m = p.match(/node_modules\/((?:@[^/]+\/)?[^/]+)$/);
             if (m && dev.includes(m[1])) found.push(p);
             walk(p, depth + 1);
           }}
         }};
         walk(process.cwd(), 0);
         console.log(JSON.stringify(found));"
    );

    // The baseline installs dev dependencies; if the search found nothing
    // there, it would prove nothing elsewhere.
    let (_, baseline) = run_in_image(
        measured("week2")["image"].as_str().unwrap(),
        &["node", "-e", &script],
    );
    assert!(baseline.contains("node_modules"), "baseline: {baseline}");

    for variant in OPTIMIZED {
        let image = measured(variant)["image"].as_str().unwrap();
        let (code, out) = run_in_image(image, &["node", "-e", &script]);

        assert_eq!(code, 0, "{variant}: {out}");
        assert_eq!(out.trim(), "[]", "{variant} holds dev dependencies");
    }
}

#[test]
fn the_baseline_runs_as_root_without_a_healthcheck_by_design() {
    let m = measured("week2");

    assert_eq!(m["user"], "root");
    assert_eq!(m["healthcheck"], false);
}
