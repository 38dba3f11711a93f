farm "f" {}
board_type "sim" {}
board_type "sim" {}
