# GPIO: pressing the button toggles the LED.
spec "button-led" {
  description = "Each press of the button toggles the LED, and the firmware says so."
  board { type = "sim" }
  timeout = "1m"

  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
    wait {
      gpio   = "led"
      value  = 0
      within = "1s"
    }
  }

  test "button toggles the LED" {
    gpio "button" {
      set = 1
      for = "100ms"
    }
    wait {
      gpio   = "led"
      value  = 1
      within = "1s"
    }
    expect {
      text   = "led=on"
      within = "1s"
    }
    gpio "button" {
      set = 1
      for = "100ms"
    }
    wait {
      gpio   = "led"
      value  = 0
      within = "1s"
    }
    expect {
      text   = "led=off"
      within = "1s"
    }
  }

  teardown {
    gpio "button" { set = 0 }
  }
}
