//! Colours and emphasis. Every meaning carried by colour is also carried by a symbol (✔/✘, arrows,
//! brackets) or a modifier, so the UI stays readable with `NO_COLOR` and on washed-out projectors.

use ratatui::style::{Color, Modifier, Style};

/// The colour scheme, chosen with `--theme`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Theme {
    /// Calm colours for a terminal on a desk.
    #[default]
    Default,
    /// High contrast, bold, no dim text: for projectors and screenshots.
    Projector,
}

/// Options of the terminal UI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UiOptions {
    pub theme: Theme,
    /// True when the `NO_COLOR` environment variable is present (any value): no colours at all.
    pub no_color: bool,
    /// The session is replayed from a file (`iotls replay`): its ending is known already, so the
    /// title shows the outcome from the first step. Otherwise it shows at the last step, so the
    /// learner can predict it first.
    pub replayed: bool,
}

/// Resolved styles for every role in the UI.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Styles {
    pub base: Style,
    pub title: Style,
    pub title_fail: Style,
    pub border: Style,
    pub border_focus: Style,
    pub tab: Style,
    pub tab_active: Style,
    pub phase: Style,
    pub device: Style,
    pub broker: Style,
    pub current: Style,
    pub future: Style,
    pub dim: Style,
    pub label: Style,
    pub value: Style,
    pub ok: Style,
    pub fail: Style,
    pub warn: Style,
    pub selected: Style,
    pub hex_selected: Style,
    pub hex_alt: [Style; 2],
    pub key: Style,
    pub key_desc: Style,
    pub emphasis: Style,
}

impl Styles {
    pub fn new(opts: UiOptions) -> Styles {
        if opts.no_color {
            return Styles::monochrome(opts.theme);
        }
        match opts.theme {
            Theme::Default => Styles {
                base: Style::new(),
                title: Style::new()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
                title_fail: Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
                border: Style::new().fg(Color::DarkGray),
                border_focus: Style::new().fg(Color::Cyan),
                tab: Style::new().fg(Color::Gray),
                tab_active: Style::new()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                phase: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                device: Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
                broker: Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                current: Style::new()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
                future: Style::new().fg(Color::DarkGray),
                dim: Style::new().fg(Color::DarkGray),
                label: Style::new().fg(Color::Cyan),
                value: Style::new(),
                ok: Style::new().fg(Color::Green),
                fail: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                warn: Style::new().fg(Color::Yellow),
                selected: Style::new()
                    .bg(Color::DarkGray)
                    .add_modifier(Modifier::BOLD),
                hex_selected: Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
                hex_alt: [Style::new().fg(Color::Gray), Style::new().fg(Color::Blue)],
                key: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                key_desc: Style::new().fg(Color::Gray),
                emphasis: Style::new().add_modifier(Modifier::BOLD),
            },
            Theme::Projector => Styles {
                base: Style::new().fg(Color::White).bg(Color::Black),
                title: Style::new()
                    .fg(Color::Black)
                    .bg(Color::White)
                    .add_modifier(Modifier::BOLD),
                title_fail: Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
                border: Style::new().fg(Color::White),
                border_focus: Style::new()
                    .fg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                tab: Style::new().fg(Color::White),
                tab_active: Style::new()
                    .fg(Color::Black)
                    .bg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                phase: Style::new()
                    .fg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                device: Style::new()
                    .fg(Color::LightGreen)
                    .add_modifier(Modifier::BOLD),
                broker: Style::new()
                    .fg(Color::LightMagenta)
                    .add_modifier(Modifier::BOLD),
                current: Style::new()
                    .fg(Color::Black)
                    .bg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                future: Style::new().fg(Color::Gray),
                dim: Style::new().fg(Color::Gray),
                label: Style::new()
                    .fg(Color::LightCyan)
                    .add_modifier(Modifier::BOLD),
                value: Style::new().fg(Color::White).add_modifier(Modifier::BOLD),
                ok: Style::new()
                    .fg(Color::LightGreen)
                    .add_modifier(Modifier::BOLD),
                fail: Style::new()
                    .fg(Color::LightRed)
                    .add_modifier(Modifier::BOLD),
                warn: Style::new()
                    .fg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                selected: Style::new()
                    .fg(Color::Black)
                    .bg(Color::White)
                    .add_modifier(Modifier::BOLD),
                hex_selected: Style::new()
                    .fg(Color::Black)
                    .bg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                hex_alt: [
                    Style::new().fg(Color::White),
                    Style::new().fg(Color::LightCyan),
                ],
                key: Style::new()
                    .fg(Color::LightYellow)
                    .add_modifier(Modifier::BOLD),
                key_desc: Style::new().fg(Color::White),
                emphasis: Style::new().add_modifier(Modifier::BOLD),
            },
        }
    }

    /// No colour: emphasis by bold, reverse video and underline only.
    fn monochrome(theme: Theme) -> Styles {
        let plain = Style::new();
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let rev = Style::new().add_modifier(Modifier::REVERSED);
        let dim = if theme == Theme::Projector {
            plain
        } else {
            Style::new().add_modifier(Modifier::DIM)
        };
        Styles {
            base: plain,
            title: rev.add_modifier(Modifier::BOLD),
            title_fail: rev.add_modifier(Modifier::BOLD),
            border: plain,
            border_focus: bold,
            tab: plain,
            tab_active: bold.add_modifier(Modifier::UNDERLINED),
            phase: bold,
            device: bold,
            broker: bold,
            current: rev.add_modifier(Modifier::BOLD),
            future: dim,
            dim,
            label: plain,
            value: plain,
            ok: plain,
            fail: bold.add_modifier(Modifier::UNDERLINED),
            warn: bold,
            selected: rev,
            hex_selected: rev.add_modifier(Modifier::BOLD),
            hex_alt: [plain, plain],
            key: bold,
            key_desc: plain,
            emphasis: bold,
        }
    }
}
