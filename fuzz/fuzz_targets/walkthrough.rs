//! Walkthrough files (`iotls-walkthrough/1`) from arbitrary text: the TOML reader, `extends` over
//! the built-in lessons, `[vars]`, and every check of the format (selectors, placeholders, the
//! PKI and registry entries it names). A lesson that loads is also given `--set` overrides read
//! from its own first line, as the command line would. Building its PKI is left out: key
//! generation would make each execution thousands of times slower.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match iotls::walkthrough::load_str("fuzz.toml", text, &[]) {
        Ok(lesson) => {
            assert!(!lesson.id.is_empty(), "a loaded lesson has an id");
            let sets: Vec<String> = text.lines().take(1).map(str::to_string).collect();
            let _ = iotls::walkthrough::load_str("fuzz.toml", text, &sets);
        }
        Err(e) => {
            // Every refusal names the file.
            assert!(e.to_string().contains("fuzz.toml"), "{e}");
        }
    }
});
