# Proves an update path survives a power cut at any moment of its write
# window: 200 iterations, each restoring the factory image with the rig's
# programmer, starting `update` over the console, and cutting the power at
# a random delay after its first progress line. The device must come back
# to its prompt every time. docs/campaigns.md walks through it.
#
#   hilfarm run --farm examples/farm.hcl --board sim-01 \
#     --firmware examples/firmware/sim-ab.hcl examples/specs/update-powercut.hcl          # passes
#   ... --firmware examples/firmware/sim-ab-inplace.hcl ...                               # fails: bricks
variable "iterations" {
  type    = number
  default = 200
}

spec "update-powercut" {
  description = "An update cut off at a random moment of its write window always leaves a bootable device."
  board { type = "sim" }
  timeout = "30m"

  test "update survives a power cut" {
    timeout = "25m"
    repeat {
      count         = var.iterations
      min_pass_rate = 1
    }
    flash {}
    power "cycle" {}
    expect {
      regex  = "boot: slot [AB] \\(seq [0-9]+\\)"
      within = "5s"
    }
    expect {
      text   = "sim> "
      within = "5s"
    }
    send { line = "update" }
    # The write window of sim-ab.hcl is ~340 ms from this line (16 chunks
    # of 20 ms, then the commit); the cut lands anywhere in it or just after.
    power "cut" {
      after   = "update: writing chunk 1/"
      within  = "5s"
      random  = ["0ms", "400ms"]
      off_for = "20ms"
    }
    expect {
      regex  = "boot: slot [AB] \\(seq [0-9]+\\)"
      within = "1s"
    }
    expect {
      text   = "sim> "
      within = "1s"
    }
  }

  teardown {
    power "off" {}
  }
}
