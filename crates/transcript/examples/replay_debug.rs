fn main() {
    let args: Vec<String> = std::env::args().collect();
    let log = std::fs::read(&args[1]).expect("log");
    let m =
        transcript::replay::replay_with(&log, (80, 24), transcript::emu::Profile::parse(&args[2]));
    print!(
        "{}",
        transcript::replay::render(&m, transcript::replay::RowFormat::Text)
    );
}
