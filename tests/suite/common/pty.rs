//! ferry on a pseudo-terminal of a given size, and a small terminal model
//! to read what it drew: the live display is only live on a terminal, and
//! what counts is what the screen shows, not the bytes (indicatif redraws
//! its lines in place, pads them to the width and relies on autowrap).

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs `cmd` with stdin, stdout and stderr on a new pseudo-terminal of
/// `cols` x `rows` (its controlling terminal); returns the exit code and
/// every byte it wrote.
pub fn run(cmd: Command, cols: u16, rows: u16) -> (i32, Vec<u8>) {
    run_typing(cmd, cols, rows, b"")
}

/// [`run`], with `typed` waiting in the terminal's input as if a person had
/// typed it (a line is read when the program asks).
pub fn run_typing(mut cmd: Command, cols: u16, rows: u16, typed: &[u8]) -> (i32, Vec<u8>) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let fd = slave.as_raw_fd();
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own with the pty as controlling terminal, as a shell gives.
            if libc::setsid() < 0 || libc::ioctl(fd, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on the pty");
    // Only the child holds the slave now: reading ends (EIO) when it exits.
    drop(slave);
    drop(cmd);
    let mut file = std::fs::File::from(master);
    if !typed.is_empty() {
        use std::io::Write;
        file.write_all(typed).expect("type into the pty");
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO: the slave side closed
        }
    }
    let code = child.wait().expect("wait").code().unwrap_or(-1);
    (code, out)
}

/// A terminal of `cols` columns with endless scrollback: what a person
/// sees after the bytes were drawn.
pub struct Screen {
    cols: usize,
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// Rows whose text reached the last column and went on on the next row
    /// (what a line longer than the terminal does), as drawn at the time.
    pub overflows: Vec<String>,
    /// The most spinner lines on screen at once, just before a redraw.
    pub most_spinners: usize,
    /// Every live (spinner) line seen just before a redraw.
    pub live: std::collections::BTreeSet<String>,
}

/// indicatif's default spinner frames.
pub const SPINNER: &[char] = &['⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈'];

impl Screen {
    pub fn new(cols: usize) -> Self {
        Screen {
            cols,
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            overflows: Vec::new(),
            most_spinners: 0,
            live: Default::default(),
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
        &mut self.rows[self.row]
    }

    fn put(&mut self, c: char) {
        let width = console::measure_text_width(&c.to_string()).max(1);
        if self.col + width > self.cols {
            // Autowrap: fine after indicatif's space filler, an overflow
            // when the text itself reached the last column.
            let text: String = self.line().iter().collect();
            if !text.ends_with(' ') {
                self.overflows.push(text);
            }
            self.row += 1;
            self.col = 0;
        }
        let col = self.col;
        let line = self.line();
        if line.len() < col + width {
            line.resize(col + width, ' ');
        }
        line[col] = c;
        for cell in line.iter_mut().skip(col + 1).take(width - 1) {
            *cell = '\0';
        }
        self.col += width;
    }

    /// Counts the live lines on screen now and remembers them.
    fn spinners(&mut self) -> usize {
        let live: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.iter().any(|c| SPINNER.contains(c) || *c == '⏳'))
            .map(|r| {
                r.iter()
                    .filter(|c| **c != '\0')
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect();
        let count = live.len();
        self.live.extend(live);
        count
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => self.col = 0,
                '\n' => {
                    self.row += 1;
                    self.col = 0;
                }
                '\u{1b}' => {
                    if chars.peek() != Some(&'[') {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    let mut params = String::new();
                    let mut end = ' ';
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            end = c;
                            break;
                        }
                        params.push(c);
                    }
                    let n: usize = params.parse().unwrap_or(0);
                    match end {
                        'A' => {
                            let now = self.spinners();
                            self.most_spinners = self.most_spinners.max(now);
                            self.row = self.row.saturating_sub(n.max(1));
                        }
                        'B' => self.row += n.max(1),
                        'C' => self.col = (self.col + n.max(1)).min(self.cols),
                        'D' => self.col = self.col.saturating_sub(n.max(1)),
                        'G' => self.col = n.saturating_sub(1),
                        'K' => {
                            let col = self.col;
                            let line = self.line();
                            match n {
                                0 => line.truncate(col),
                                1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                                _ => line.clear(),
                            }
                        }
                        'J' if n == 0 => {
                            let (row, col) = (self.row, self.col);
                            self.line().truncate(col);
                            self.rows.truncate(row + 1);
                        }
                        _ => {} // colours, cursor visibility
                    }
                }
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
        let now = self.spinners();
        self.most_spinners = self.most_spinners.max(now);
    }

    /// The screen's rows, trailing blanks removed.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|c| **c != '\0')
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
}
