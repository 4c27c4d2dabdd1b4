service "api" {
  hosts        = ["web1"]
  binary       = build.app
  display_name = "Orders"
}

service "orders" {
  hosts        = ["web1"]
  binary       = build.app
  display_name = "orders"
}

host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 7:1 Duplicate display name
