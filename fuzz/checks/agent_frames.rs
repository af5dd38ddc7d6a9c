//! Property of the `agent_frames` fuzz target, shared with
//! `crates/rollway-engine/tests/fuzz_regressions.rs`: the host agent's frame
//! decoder, fed an arbitrary byte stream the way `agent::serve` reads its
//! stdin — a request (`recv::<Request>`), and after `Prepare` or `File` the
//! data stream that follows it (`DataReader`) — never panics and never
//! reads past the stream; every request it accepts survives a round trip
//! through `send` and `recv` unchanged; and a data stream is read whole or
//! refused, leaving the next frame in step.

use rollway_engine::fuzzing::{DataReader, MAX_MANIFEST, Request, read_frame, recv, send};

/// Runs one input; panics when the property does not hold.
pub fn check(data: &[u8]) {
    // Raw frames with a small limit: the length check and truncation paths.
    let mut r = data;
    while let Ok(Some(frame)) = read_frame(&mut r, 64) {
        assert!(frame.len() <= 64, "a frame over the limit was accepted");
    }

    let mut r = data;
    loop {
        let before = r.len();
        let request = match recv::<Request>(&mut r) {
            Ok(Some(request)) => request,
            Ok(None) => {
                assert_eq!(r.len(), 0, "a clean end of stream with bytes left");
                return;
            }
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        assert!(r.len() < before, "a request was read without consuming input");
        let mut wire = Vec::new();
        send(&mut wire, &request).expect("a decoded request encodes");
        let again = recv::<Request>(&mut &wire[..]).expect("an encoded request decodes");
        assert_eq!(again.as_ref(), Some(&request), "request changed in a round trip");
        if matches!(request, Request::Prepare { .. } | Request::File { .. }) {
            let mut stream = DataReader::new(&mut r);
            match stream.read_to_vec(MAX_MANIFEST) {
                Ok(body) => assert_eq!(body.len() as u64, stream.bytes, "data bytes miscounted"),
                Err(_) => return,
            }
        }
    }
}
