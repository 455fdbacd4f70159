// Rebuild when the console build output changes, so release binaries embed the current console.
fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
}
