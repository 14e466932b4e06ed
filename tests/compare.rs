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
    project_with_tag(TAG)
}

/// The same project with the variant built under `tag`, for tests that
/// run beside the one above without sharing its image.
fn project_with_tag(tag: &str) -> tempfile::TempDir {
    let dir = project_copy();
    std::fs::write(
        dir.path().join("imgopt.toml"),
        format!(
            "[build_args]\nNODE_IMAGE = \"node:18.20.8\"\n\
             NODE_ALPINE_IMAGE = \"node:18.20.8-alpine3.21\"\n\n\
             [[variant]]\nname = \"multi-stage\"\n\
             dockerfile = \"{DOCKERFILE}\"\ntag = \"{tag}\"\n\n\
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

/// Removes a test tag (the image stays while another tag names it).
fn untag(tag: &str) {
    let docker = docker();
    let _ = runtime().block_on(docker.remove_image(
        tag,
        None::<bollard::query_parameters::RemoveImageOptions>,
        None,
    ));
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

#[cfg(unix)]
#[test]
fn the_baseline_file_is_written_through_its_symlink_and_a_bad_one_is_replaced_only_when_asked(
) {
    use std::os::unix::fs::PermissionsExt;
    const FILE_TAG: &str = "imgopt-test-compare-file:multi-stage";
    let dir = project_with_tag(FILE_TAG);
    let (code, _, err) = compare(dir.path(), &["--update-baseline"]);
    assert_eq!(code, Some(0), "{err}");

    // The committed file lives elsewhere; the project holds a link.
    let link = dir.path().join("imgopt-baseline.json");
    let real = dir.path().join("elsewhere/bl.json");
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::fs::rename(&link, &real).unwrap();
    std::os::unix::fs::symlink("elsewhere/bl.json", &link).unwrap();
    let is_link = || link.symlink_metadata().unwrap().is_symlink();

    // A variant gone from imgopt.toml is noted, then dropped.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap())
            .unwrap();
    json["variants"]["retired"] = json["variants"]["multi-stage"].clone();
    std::fs::write(&real, json.to_string()).unwrap();
    let (code, _, err) = compare(dir.path(), &["--no-build"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(
            "note: baseline names variant 'retired', which imgopt.toml no \
             longer has; `--update-baseline` drops it"
        ),
        "{err}"
    );
    let (code, _, err) =
        compare(dir.path(), &["--no-build", "--update-baseline"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(is_link(), "the symlink was replaced by a file");
    let accepted = std::fs::read_to_string(&real).unwrap();
    assert!(!accepted.contains("retired"), "{accepted}");
    assert!(accepted.contains("multi-stage"), "{accepted}");

    // A corrupt file: a dead end no more.
    std::fs::write(&real, "{ \"format_version\": 1, trunc").unwrap();
    let (code, _, err) = compare(dir.path(), &["--no-build"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("run `imgopt compare --update-baseline` to replace it"),
        "{err}"
    );
    let (code, _, err) =
        compare(dir.path(), &["--no-build", "--update-baseline"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("could not be read"), "{err}");
    assert!(err.contains("is being replaced"), "{err}");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), accepted);
    assert!(is_link());

    // A file of another version says so, not which field it lacks.
    std::fs::write(&real, r#"{"format_version": 9}"#).unwrap();
    let (code, _, err) = compare(dir.path(), &["--no-build"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("format version 9"), "{err}");
    assert!(!err.contains("missing field"), "{err}");

    // A read-only file is refused, and left as it is.
    std::fs::write(&real, &accepted).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o444))
        .unwrap();
    let (code, _, err) =
        compare(dir.path(), &["--no-build", "--update-baseline"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is read-only; make it writable to update it"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), accepted);

    untag(FILE_TAG);
}
