//! include_dir does not notice files added to `fixtures/`; this makes cargo
//! rebuild when anything there changes.

fn main() {
    println!("cargo:rerun-if-changed=fixtures");
}
