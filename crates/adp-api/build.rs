//! Compiles `proto/adp/v1` with protox (no system protoc) and generates prost/tonic code
//! whose messages implement `prost_reflect::ReflectMessage`, so protovalidate can read
//! the `buf.validate` rules from the same descriptor set that serves gRPC reflection.

use std::env;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto").canonicalize()?;
    let validate_root = protovalidate_proto_root(&manifest_dir)?;
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(proto_root.join("adp/v1"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();

    let descriptor_bytes = protox::Compiler::new([&proto_root, &validate_root])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(&files)?
        .encode_file_descriptor_set();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("adp_descriptor.bin"), &descriptor_bytes)?;

    let pool = prost_reflect::DescriptorPool::decode(descriptor_bytes.as_slice())?;
    let mut builder = tonic_prost_build::configure()
        .extern_path(".buf.validate", "::prost_protovalidate::types")
        .build_client(true)
        .build_server(true)
        // the generated `XClient::connect` helper collides with the `Connect` RPC of
        // ConnectionService; clients are built with `XClient::new(channel)` instead
        .build_transport(false)
        // these carry secret values: lib.rs implements a redacting Debug instead
        .skip_debug([
            "adp.v1.CreateSecretRequest",
            "adp.v1.UpdateSecretRequest",
            "adp.v1.GetUpstreamCredentialResponse",
        ]);
    for message in pool.all_messages() {
        let full_name = message.full_name();
        if !full_name.starts_with("adp.") {
            continue;
        }
        builder = builder.message_attribute(
            full_name,
            format!(
                "#[derive(::prost_reflect::ReflectMessage)] \
                 #[prost_reflect(descriptor_pool = \"crate::DESCRIPTOR_POOL\", message_name = \"{full_name}\")]"
            ),
        );
    }
    let file_descriptor_set =
        <prost_types::FileDescriptorSet as prost::Message>::decode(descriptor_bytes.as_slice())?;
    builder.compile_fds(file_descriptor_set)?;
    Ok(())
}

/// Finds `buf/validate/validate.proto` inside the prost-protovalidate-types package that
/// cargo already downloaded, so the file is used from its source rather than copied here.
fn protovalidate_proto_root(manifest_dir: &Path) -> Result<PathBuf, Box<dyn Error>> {
    // offline first: a normal build has already downloaded every package. A build of
    // one package after the workspace gained a dependency has not, and then cargo
    // metadata must fetch the new packages from the registry to resolve.
    let output = cargo_metadata(manifest_dir, true)?;
    let output = if output.status.success() {
        output
    } else {
        cargo_metadata(manifest_dir, false)?
    };
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    for package in packages {
        if package["name"] == "prost-protovalidate-types" {
            let manifest = package["manifest_path"]
                .as_str()
                .ok_or("cargo metadata: no manifest_path")?;
            let root = Path::new(manifest)
                .parent()
                .ok_or("manifest has no parent")?
                .join("proto");
            if root.join("buf/validate/validate.proto").exists() {
                return Ok(root);
            }
        }
    }
    Err("prost-protovalidate-types not found in cargo metadata".into())
}

fn cargo_metadata(
    manifest_dir: &Path,
    offline: bool,
) -> Result<std::process::Output, Box<dyn Error>> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["metadata", "--format-version", "1", "--filter-platform"]);
    command.arg(env::var("TARGET")?);
    if offline {
        command.arg("--offline");
    }
    command
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"));
    Ok(command.output()?)
}
