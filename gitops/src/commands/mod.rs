//! One module per subcommand, each with its `Args` and `run(args)`.

pub mod diff;
pub mod promote;
pub mod publish;
pub mod release;
pub mod set_image;
pub mod verify;
pub mod verify_env;
