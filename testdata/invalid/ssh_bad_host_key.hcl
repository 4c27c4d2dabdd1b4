host "web2" {
  address = "web2.example.internal"
  ssh {
    user     = "deploy"
    host_key = "ssh-ed25519 not-base64!"
  }
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

# ERROR: 5:16 Invalid host key
