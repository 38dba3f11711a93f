# The REGRESSED update path: the same device, but `update` writes the new
# image in place over the slot it runs from. A power cut in the middle leaves
# no valid image: the device prints "boot: no valid image" and is bricked.
# (docs/emulators.md, "Flash and updates")
version   = "2.0.1-rc1"
banner    = "Booting hilfarm-sim v${version}"
boot_time = "20ms"
prompt    = "sim> "

update {
  mode        = "in_place"
  sector_size = 4096
  image_size  = 65536  # 16 chunks
  chunk_time  = "20ms" # the write window is ~340 ms
}

command "sensor temp" {
  response = "temp=23.5C"
}
