//! Generates the etcd v3 gRPC client stubs from the trimmed protos in `proto/` (feature `etcd`).
//!
//! Pure Rust: `protox` parses the protos into a `FileDescriptorSet` and `tonic-prost-build`
//! generates the messages and client stubs from it, so no `protoc` and no system protobuf
//! includes are needed.

fn main() {
    #[cfg(feature = "etcd")]
    etcd_protos();
}

#[cfg(feature = "etcd")]
fn etcd_protos() {
    const PROTOS: [&str; 3] = ["proto/kv.proto", "proto/auth.proto", "proto/rpc.proto"];
    println!("cargo:rerun-if-changed=proto");
    let fds = match protox::compile(PROTOS, ["proto"]) {
        Ok(fds) => fds,
        Err(e) => panic!("parsing the etcd protos failed: {e:?}"),
    };
    let generated = tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .build_transport(false)
        .compile_fds(fds);
    if let Err(e) = generated {
        panic!("generating the etcd client stubs failed: {e}");
    }
}
