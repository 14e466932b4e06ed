//! `imgopt compare` as a pre-commit gate, with the real engine, on a copy
//! of the project reduced to one variant (cached builds keep it cheap).

mod common;

use std::path::Path;

use common::{docker, imgopt, project_copy, run, runtime};

const TAG: &str = "imgopt-test-compare:multi-stage";
const DOCKERFILE: &str = "dockerfiles/Dockerfile.multi-stage";

/// The project copy with a config of one variant under a test tag and a
/// 5% growth budget.
fn one_variant_project() -> tempfile::TempDir {
    let dir = project_copy();
    std::fs::write(
        dir.path().join("imgopt.toml"),
        format!(
            "[build_args]\nNODE_IMAGE = \"node:18.20.8\"\n\
             NODE_ALPINE_IMAGE = \"node:18.20.8-alpine3.21\"\n\n\
             [[variant]]\nname = \"multi-stage\"\n\
             dockerfile = \"{DOCKERFILE}\"\ntag = \"{TAG}\"\n\n\
             [budgets]\nmax_growth_percent = 5\n"
        ),
    )
    .unwrap();
    dir
}

fn compare(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = run(imgopt(dir).arg("compare").args(args));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn image_id(reference: &str) -> String {
    runtime().block_on(docker().inspect_image(reference)).unwrap().id.unwrap()
}

#[test]
fn compare_fails_when_an_image_grows_past_its_budget_and_passes_again_after_a_revert(
) {
    let dir = one_variant_project();
    let baseline = dir.path().join("imgopt-baseline.json");
    let dockerfile = dir.path().join(DOCKERFILE);
    let original = std::fs::read_to_string(&dockerfile).unwrap();

    // Without a baseline file: exit 2, saying how to make one.
    let (code, _, err) = compare(dir.path(), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("imgopt compare --update-baseline"), "{err}");
    assert!(!baseline.exists());

    let (code, _, err) = compare(dir.path(), &["--update-baseline"]);
    assert_eq!(code, Some(0), "{err}");
    let accepted = std::fs::read_to_string(&baseline).unwrap();
    let json: serde_json::Value = serde_json::from_str(&accepted).unwrap();
    assert_eq!(json["format_version"], 1);
    assert!(json["variants"]["multi-stage"]["size_bytes"].as_u64() > Some(0));

    // 20 MB of random bytes on a ~190 MB image: about 10% growth.
    let grown = original.replacen(
        "ENV NODE_ENV=production\n",
        "ENV NODE_ENV=production\nRUN head -c 20000000 /dev/urandom > /big\n",
        1,
    );
    assert_ne!(grown, original, "the Dockerfile's runtime stage moved");
    std::fs::write(&dockerfile, grown).unwrap();
    let (code, out, err) = compare(dir.path(), &[]);
    let grown_id = image_id(TAG);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(
            "budget failed: variant 'multi-stage': max_growth_percent"
        ),
        "{err}"
    );
    assert!(out.contains("FAIL"), "{out}");
    assert_eq!(std::fs::read_to_string(&baseline).unwrap(), accepted);

    std::fs::write(&dockerfile, &original).unwrap();
    let (code, out, err) = compare(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, _) =
        compare(dir.path(), &["--no-build", "--format", "json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["over_time"][0]["delta_bytes"], 0);

    // The grown image is dangling now; the test tag goes too.
    let docker = docker();
    runtime().block_on(async {
        for image in [grown_id.as_str(), TAG] {
            let _ = docker
                .remove_image(
                    image,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
        }
    });
}
