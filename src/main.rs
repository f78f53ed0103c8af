fn main() {
    std::process::exit(ferry::run());
}
